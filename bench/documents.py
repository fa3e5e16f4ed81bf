"""Documents from the reset state: what they cost in training speed, and the cold-start gap they close.

    python bench/documents.py speed --before ../charrnn-27d505f     # chars/s, an older checkout against this one
    python bench/documents.py cost                                  # padding and batch-building time, exactly
    python bench/documents.py gap before=RUN after=RUN --corpus tinyshakespeare

`speed` trains each corpus for a fixed number of steps (`--size default`, no evaluation until the end)
with each checkout in turn, A B A B ..., and compares characters per second of *real* text: this
checkout counts the characters its windows predict, padding left out; the older one read no padding.
`cost` counts what documents add to a step without timing whole runs (which vary by +-10% on a shared
machine): the share of padded targets, and the time to build a batch. `gap` scores each run's best.pt with `charrnn eval` (this checkout) on the corpus's held-out text and
reports the cold-start loss (the first 64 characters after each document or line start, read from the
reset state after a newline), the loss, and the gap between them.

The corpora: Tiny Shakespeare (one file, ../shared/corpora), the Python standard library's modules as
`charrnn demo` reads them (168 files), and Tiny Shakespeare cut at speech ends into files of about
2,000 characters (`short`, made in --work). Writes bench/results/documents-{speed,cost,gap-CORPUS}.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"


def stdlib_files() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from charrnn.data import stdlib_sources

    return stdlib_sources()


def short_files(work: Path, size: int = 2000) -> list[str]:
    """Tiny Shakespeare in files of about `size` characters, each cut after a speech (a blank line)."""
    folder = work / "short"
    if not folder.exists():
        folder.mkdir(parents=True)
        text, n, at = SHAKESPEARE.read_text(encoding="utf-8"), 0, 0
        while at < len(text):
            end = text.find("\n\n", at + size)
            end = len(text) if end < 0 else end + 2
            (folder / f"{n:04d}.txt").write_text(text[at:end], encoding="utf-8")
            at, n = end, n + 1
    return [str(folder)]


def corpus(name: str, work: Path) -> list[str]:
    return {"tinyshakespeare": lambda: [str(SHAKESPEARE)], "stdlib": stdlib_files, "short": lambda: short_files(work)}[
        name
    ]()


def held_out(name: str, work: Path, val_frac: float) -> list[str]:
    """The files that lie wholly in a corpus's validation split (its last val_frac of characters); for one
    file, that last part written out."""
    sources = corpus(name, work)
    files = sorted(Path(sources[0]).iterdir()) if Path(sources[0]).is_dir() else [Path(s) for s in sources]
    sizes = [len(f.read_text(encoding="utf-8")) for f in files]
    if len(files) == 1:
        text = files[0].read_text(encoding="utf-8")
        out = work / f"{name}.val.txt"
        out.write_text(text[len(text) - int(len(text) * val_frac) :], encoding="utf-8")
        return [str(out)]
    cut, seen, chosen = sum(sizes) - int(sum(sizes) * val_frac), 0, []
    for f, n in zip(files, sizes, strict=True):
        if seen >= cut:
            chosen.append(str(f))
        seen += n
    return chosen


def train_speed(tree: Path, sources: list[str], steps: int, work: Path) -> float:
    """Characters per second of one fixed-length run of `charrnn train` with the checkout at `tree`."""
    out = Path(tempfile.mkdtemp(dir=work))
    cmd = [sys.executable, "-m", "charrnn", "train", *sources, "--size", "default", "--max-steps", str(steps)]
    cmd += ["--eval-every", "1000000", "--sample-every", "0", "--seed", "1", "--out", str(out / "run")]
    cmd += ["--cache-dir", str(work / f"cache-{tree.name}")]
    subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(tree)}, check=True, capture_output=True)
    last = json.loads((out / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    return last["chars"] / last["time"]


def speed(args: argparse.Namespace) -> None:
    rows = []
    for name in args.corpus:
        sources, pairs = corpus(name, args.work), []
        for tree in (args.before, ROOT):  # warm-up: caches, tokenization
            train_speed(tree, sources, 20, args.work)
        for _ in range(args.repeats):
            pairs.append(
                (
                    train_speed(args.before, sources, args.steps, args.work),
                    train_speed(ROOT, sources, args.steps, args.work),
                )
            )
        row = {
            "corpus": name,
            "before_chars_per_sec": statistics.median(p[0] for p in pairs),
            "after_chars_per_sec": statistics.median(p[1] for p in pairs),
            "after_over_before": statistics.median(p[1] / p[0] for p in pairs),
            "pairs": pairs,
        }
        rows.append(row)
        print(
            f"{name:<16} before {row['before_chars_per_sec']:>9,.0f}  after {row['after_chars_per_sec']:>9,.0f}  ratio {row['after_over_before']:.3f}"
        )
    meta = {"before": str(args.before), "steps": args.steps, "repeats": args.repeats}
    record.write(args.out or ROOT / "bench" / "results" / "documents-speed.json", meta, rows)


def cost(args: argparse.Namespace) -> None:
    """What documents add to a step, exactly: padded targets, and the time to build a batch (this
    checkout's DocBatches against the older BPTTBatches, in process), at batch 16 x 128."""
    sys.path.insert(0, str(ROOT))
    from charrnn.config import DataConfig
    from charrnn.data import PIECE_WINDOWS, BPTTBatches, DocBatches, load_corpus

    rows = []
    for name in args.corpus:
        c = load_corpus(DataConfig(sources=corpus(name, args.work), cache_dir=str(args.work / "cache-cost")))
        newline = int(c.tokenizer.encode("\n")[0])
        docs = DocBatches(c.train.ids, c.train.starts, newline, 16, 128, pieces=PIECE_WINDOWS)
        streams = BPTTBatches(c.train.ids, 16, 128)
        t0, real = time.perf_counter(), 0
        for i in range(len(docs)):  # all a step asks of its batches
            docs.get(i), docs.resets(i)
            real += docs.predicted(i)
        per_doc_step = (time.perf_counter() - t0) / len(docs)
        t0 = time.perf_counter()
        for i in range(len(streams)):
            streams.get(i), streams.predicted(i)
        per_stream_step = (time.perf_counter() - t0) / len(streams)
        row = {
            "corpus": name,
            "documents": len(c.train.starts),
            "pieces": len(docs.seg_start),
            "padding": 1 - real / (len(docs) * 16 * 128),
            "batch_ms": {"documents": per_doc_step * 1e3, "streams": per_stream_step * 1e3},
        }
        rows.append(row)
        print(
            f"{name:<16} {row['documents']:>4} documents, {row['pieces']:>4} pieces; padding {row['padding']:.2%}; "
            f"a batch built in {row['batch_ms']['documents']:.3f} ms (streams {row['batch_ms']['streams']:.3f} ms)"
        )
    record.write(args.out or ROOT / "bench" / "results" / "documents-cost.json", {"batch": "16 x 128"}, rows)


def gap(args: argparse.Namespace) -> None:
    files = held_out(args.corpus[0], args.work, args.val_frac)
    rows = []
    for spec in args.runs:
        label, _, run = spec.partition("=")
        cmd = [sys.executable, "-m", "charrnn", "eval", *files, "-c", str(Path(run) / "best.pt"), "--json"]
        done = subprocess.run(
            cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, capture_output=True, text=True
        )
        scored = json.loads(done.stdout)
        auto = Path(run) / "autosize.json"
        row = {
            "corpus": args.corpus[0],
            "run": label,
            "path": run,
            "loss": scored["nats_per_token"],
            "cold_start_loss": scored["cold_start_loss"],
            "gap": scored["cold_start_loss"] - scored["nats_per_token"],
            "held_out_files": len(files),
            "autosize": json.loads(auto.read_text()).get("chosen") if auto.exists() else None,
        }
        rows.append(row)
        print(f"{label:<10} loss {row['loss']:.4f}  cold start {row['cold_start_loss']:.4f}  gap {row['gap']:+.4f}")
    out = args.out or ROOT / "bench" / "results" / f"documents-gap-{args.corpus[0]}.json"
    record.write(out, {"val_frac": args.val_frac}, rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("speed", "cost", "gap"))
    parser.add_argument("runs", nargs="*", help="gap: LABEL=RUN_FOLDER ...")
    parser.add_argument("--corpus", action="append", choices=("tinyshakespeare", "stdlib", "short"))
    parser.add_argument("--before", type=Path, help="speed: the older checkout to compare with")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--val-frac", type=float, default=0.1, help="gap: the held-out share the runs used")
    parser.add_argument("--work", type=Path, default=Path("/tmp/documents-bench"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.corpus = args.corpus or ["tinyshakespeare", "stdlib", "short"]
    args.work.mkdir(parents=True, exist_ok=True)
    {"speed": speed, "cost": cost, "gap": gap}[args.what](args)
