"""Tokenization speed and peak memory per tokenizer, on a real text repeated to 100 MB and 1 GB.

    nice -n 10 python bench/tokenization.py                      # 100 MB and 1 GB, all four tokenizers
    python bench/tokenization.py --sizes 100 --tokenizers char    # a quick look

Each case runs in a fresh subprocess (`--child`) that tokenizes the corpus into an empty cache
with charrnn.data.load_corpus (fingerprint, scan, tokenizer training, encoding to the memory
map) and reports its wall time, its peak resident memory (VmHWM), the CPU time it and its
SentencePiece encoding workers used, and the peak memory of it and its workers together (its
resident set plus the workers' private pages, sampled every 20 ms). Each row also gives the
load average before it: on a shared machine wall times are only as good as the idle cores. The "train" line tokenizes the
1 GB corpus with chars and trains a few steps from the memory map; its memory is compared with
the same training on a 1 MB corpus, which holds what the model itself needs. Corpora and caches
live in a temporary folder under /tmp that is removed at the end. Prints a table and writes
bench/results/tokenize.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"
MB = 1_000_000
TRAIN_MODEL = {"hidden_size": 128, "embed_size": 64, "layers": 2, "dropout": 0.0}


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), file-backed pages of memory maps included."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (encoding workers), user and system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _rollup_kb(pid: str, *fields: str) -> int:
    """Sum of the given fields (kB) of /proc/PID/smaps_rollup; 0 once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:  # a worker that has just exited
        return 0
    return sum(int(line.split()[1]) for line in lines if line.split(":")[0] in fields)


def tree_memory_mb() -> float:
    """This process's resident set plus its children's private pages (what forking them added)."""
    children = [pid for task in Path("/proc/self/task").iterdir() for pid in (task / "children").read_text().split()]
    kb = _rollup_kb("self", "Rss") + sum(_rollup_kb(pid, "Private_Clean", "Private_Dirty") for pid in children)
    return kb / 1024


class PeakTreeMemory:
    """Samples tree_memory_mb every few milliseconds on a thread, keeping the peak."""

    def __init__(self) -> None:
        self.peak = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, tree_memory_mb())

    def __enter__(self) -> PeakTreeMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def child_tokenize(corpus: str, tokenizer: str, cache: str) -> dict:
    from charrnn.config import DataConfig
    from charrnn.data import load_corpus

    start, cpu = time.perf_counter(), cpu_seconds()
    with PeakTreeMemory() as memory:
        loaded = load_corpus(DataConfig(sources=[corpus], tokenizer=tokenizer, cache_dir=cache))
    seconds = time.perf_counter() - start
    tokens = len(loaded.train.ids) + len(loaded.val.ids)
    chars = loaded.train.n_chars + loaded.val.n_chars
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu,
        "tokens": tokens,
        "chars_per_token": chars / tokens,
        "tree_peak_mb": memory.peak,
    }


def child_train(corpus: str, val_file: str, cache: str, steps: int) -> dict:
    from charrnn import trainer
    from charrnn.config import DataConfig, TrainConfig

    start = time.perf_counter()
    trainer.train(
        DataConfig(sources=[corpus], val_file=val_file, cache_dir=cache),
        TRAIN_MODEL,
        TrainConfig(max_steps=steps, eval_every=steps, batch_size=16, seq_len=128, device="cpu"),
        out=str(Path(cache) / "run"),
    )
    return {"seconds": time.perf_counter() - start}


def child_baseline() -> dict:
    import torch

    from charrnn import data  # noqa: F401  (imports torch and numpy, as every case does)

    torch.zeros(1)
    return {}


def run_child(*args: str) -> dict:
    """Run one case in a fresh interpreter; its last stdout line is the JSON result."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {args} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def build_corpus(source: Path, size: int, path: Path) -> int:
    """Repeat the source text until the file holds at least `size` bytes."""
    text = source.read_bytes()
    written = 0
    with open(path, "wb") as f:
        while written < size:
            f.write(text)
            written += len(text)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="corpus sizes in MB, comma-separated")
    parser.add_argument("--tokenizers", default="char,byte,bpe,unigram")
    parser.add_argument("--train-steps", type=int, default=20, help="steps of the 1 GB train line (0 = skip it)")
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tokenize.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = {"tokenize": child_tokenize, "train": child_train, "baseline": child_baseline}[kind](
            *[int(a) if a.isdigit() else a for a in rest]
        )
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return

    if not args.source.exists():
        sys.exit(f"{args.source} is missing; pass --source with a text file")
    sizes = [int(s) * MB for s in args.sizes.split(",")]
    kinds = args.tokenizers.split(",")
    baseline = run_child("baseline")["peak_rss_mb"]
    rows: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="charrnn-bench-", dir="/tmp"))
    try:
        for size in sizes:
            corpus = tmp / f"corpus-{size // MB}MB.txt"
            nbytes = build_corpus(args.source, size, corpus)
            for kind in kinds:
                load = os.getloadavg()[0]  # the machine may be shared: say how busy it was
                result = run_child("tokenize", str(corpus), kind, str(tmp / "cache"))
                shutil.rmtree(tmp / "cache")
                rows.append({**_row(f"tokenize {kind}", nbytes, result, baseline), "load_before": load})
                print(_line(rows[-1]), file=sys.stderr)
            if args.train_steps and size == max(sizes):
                rows.extend(_train_lines(args, tmp, corpus, nbytes))
            corpus.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = {
        "source": args.source.name,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}",
        "cpu": cpu_model(),
        "import_baseline_rss_mb": round(baseline, 1),
        "train_model": TRAIN_MODEL,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    _print_table(report)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _train_lines(args: argparse.Namespace, tmp: Path, corpus: Path, nbytes: int) -> list[dict]:
    """Tokenize + train on the big corpus, and the same training on 1 MB (the model's own needs)."""
    val = tmp / "val.txt"
    val.write_bytes(args.source.read_bytes()[:100_000])
    small = tmp / "small.txt"
    small_bytes = build_corpus(args.source, MB, small)
    rows = []
    for name, path, size in (("train (1 MB, model only)", small, small_bytes), ("tokenize + train", corpus, nbytes)):
        result = run_child("train", str(path), str(val), str(tmp / "cache"), str(args.train_steps))
        shutil.rmtree(tmp / "cache")
        rows.append(_row(f"{name}, {args.train_steps} steps", size, result, rows[0]["peak_rss_mb"] if rows else None))
        print(_line(rows[-1]), file=sys.stderr)
    return rows


def _row(case: str, nbytes: int, result: dict, baseline: float | None) -> dict:
    row = {"case": case, "corpus_mb": round(nbytes / MB), **{k: round(v, 3) for k, v in result.items()}}
    row["mb_per_s"] = round(nbytes / MB / result["seconds"], 1)
    if baseline is not None:
        row["rss_over_baseline_mb"] = round(result["peak_rss_mb"] - baseline, 1)
    return row


def _line(row: dict) -> str:
    line = f"{row['case']:>40} {row['corpus_mb']:>6} MB {row['mb_per_s']:>8} MB/s {row['peak_rss_mb']:>8.0f} MB peak"
    if "cpu_seconds" in row:
        line += f", with workers {row['tree_peak_mb']:.0f} MB, {row['cpu_seconds']:.1f} CPU s, load {row['load_before']:.2f}"
    return line


def _print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Tokenization, {report['source']} repeated ({report['machine']})")
    cols = (
        "case",
        "corpus MB",
        "seconds",
        "MB/s",
        "CPU s",
        "chars/token",
        "peak RSS MB",
        "over baseline MB",
        "with workers MB",
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in report["rows"]:
        table.add_row(
            r["case"],
            str(r["corpus_mb"]),
            f"{r['seconds']:.1f}",
            f"{r['mb_per_s']:.1f}",
            f"{r['cpu_seconds']:.1f}" if "cpu_seconds" in r else "",
            f"{r['chars_per_token']:.2f}" if "chars_per_token" in r else "",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['rss_over_baseline_mb']:.0f}" if "rss_over_baseline_mb" in r else "",
            f"{r['tree_peak_mb']:.0f}" if "tree_peak_mb" in r else "",
        )
    Console(width=150).print(table)
    print(f"baseline (python + torch + charrnn.data imported): {report['import_baseline_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
