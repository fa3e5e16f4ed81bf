"""The sweep behind `--size auto`: best validation loss of each model size after N characters of training.

What a model reaches in T minutes on a CPU depends on how many characters the CPU trains in those
minutes, not on where they are trained. So this sweep trains each candidate size for a fixed number of
characters N (steps = N / (batch x seq_len), the cosine schedule ending at N as a time budget ends it
on the CPU) on a fast device, over N from a 2-minute AVX2 run to a 10-minute AVX512-BF16 one, on a
corpus of about a million characters (Tiny Shakespeare) and on one of twenty million (Python sources).
charrnn/autosize.py holds the table it prints (`python bench/size_sweep.py --table`) and chooses, for
a machine's measured speeds and a budget, the size with the lowest interpolated loss.

    python bench/size_sweep.py --python-corpus data/python.txt        # make the second corpus
    python bench/size_sweep.py --device cuda --jobs 10 --out runs.jsonl  # the sweep (one line per run)
    python bench/size_sweep.py --table runs.jsonl                     # the table for autosize.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHAKESPEARE = ROOT / ".benchdata" / "tinyshakespeare.txt"  # a copy of ../shared/corpora's, never committed
PYTHON = ROOT / ".benchdata" / "python.txt"
SEQ_LEN = 128
M = 1_000_000


def make_python_corpus(path: Path, chars: int = 20 * M) -> None:
    """The standard library's own sources (tests left out), in sorted order, cut at `chars`."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    parts, total = [], 0
    for file in sorted(lib.rglob("*.py")):
        if any(p in {"test", "tests", "idlelib", "site-packages"} for p in file.relative_to(lib).parts):
            continue
        text = file.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        total += len(text)
        if total >= chars:
            break
    path.write_text("".join(parts)[:chars], encoding="utf-8")


def runs() -> list[dict]:
    """The grid, most informative first (a run cut short by a time limit loses the least)."""
    from charrnn.autosize import CANDIDATES, candidate_settings

    everyone = [c.name for c in CANDIDATES]
    big = [c.name for c in CANDIDATES if c.hidden_size >= 384]
    grid = [
        {"corpus": "shakespeare", "chars": n, "candidate": c, "variant": "rule"} for n in (4 * M, M) for c in everyone
    ]
    # Checks of the rule's batch, learning-rate and dropout choices at the 10-minute AVX2 point.
    for name in ("2x384", "2x512"):
        for variant in ("batch8", "lr x1.5", "lr x0.67", "dropout 0", "dropout +0.1"):
            grid.append({"corpus": "shakespeare", "chars": 4 * M, "candidate": name, "variant": variant})
    grid += [{"corpus": "python", "chars": 4 * M, "candidate": c, "variant": "rule"} for c in big]
    grid += [{"corpus": "shakespeare", "chars": 16 * M, "candidate": c, "variant": "rule"} for c in everyone]
    grid += [{"corpus": "python", "chars": 16 * M, "candidate": c, "variant": "rule"} for c in big]
    corpus_chars = {"shakespeare": 0.9 * SHAKESPEARE.stat().st_size, "python": 0.9 * PYTHON.stat().st_size}
    for run in grid:
        model, train = candidate_settings(run["candidate"], run["chars"], corpus_chars[run["corpus"]])
        apply_variant(run["variant"], model, train)
        run["model"], run["train"] = model, train
    return grid


def recipe_runs() -> list[dict]:
    """Recipe checks at the issue's 10-minute AVX2 point: what 2x384 trains in 10 minutes on this
    project's AVX2 machine (8,100 chars/s, 4.9M characters). Variants are `field=value` pairs over
    the recipe as it was before weight decay joined it (weight decay 0.01); bench/results/recipe.json."""
    from charrnn.autosize import candidate_settings

    variants = ["rule", "seed=2", "min_lr_frac=0", "min_lr_frac=0 seed=2", "lr=0.008 min_lr_frac=0",
                "lr=0.008 min_lr_frac=0 seed=2", "lr=0.01 min_lr_frac=0", "lr=0.01 min_lr_frac=0 seed=2",
                "dropout=0.2 min_lr_frac=0", "warmup_steps=100 min_lr_frac=0", "grad_clip=5 min_lr_frac=0",
                "weight_decay=0.1 min_lr_frac=0", "weight_decay=0.1 min_lr_frac=0 seed=2", "weight_decay=0.1 seed=2",
                "weight_decay=0.2 min_lr_frac=0", "weight_decay=0.2 min_lr_frac=0 seed=2"]  # fmt: skip
    grid = []
    for variant in variants:
        model, train = candidate_settings("2x384", 4_900_000, 0.9 * SHAKESPEARE.stat().st_size)
        apply_variant("weight_decay=0.01 " + variant.replace("rule", ""), model, train)
        grid.append({"corpus": "shakespeare", "chars": 4_900_000, "candidate": "2x384", "variant": variant,
                     "model": model, "train": train})  # fmt: skip
    return grid


def apply_variant(variant: str, model: dict, train: dict) -> None:
    if "=" in variant:
        for pair in variant.split():
            field, value = pair.split("=")
            (model if field == "dropout" else train)[field] = (
                float(value) if "." in value or "e" in value else int(value)
            )
    elif variant == "batch8":
        train["batch_size"] = 8
    elif variant.startswith("lr x"):
        train["lr"] = round(train["lr"] * float(variant[4:]), 6)
    elif variant == "dropout 0":
        model["dropout"] = 0.0
    elif variant == "dropout +0.1":
        model["dropout"] = round(model["dropout"] + 0.1, 3)


def train_one(run: dict, device: str) -> dict:
    import torch

    from charrnn import trainer
    from charrnn.config import DataConfig, TrainConfig

    torch.set_num_threads(1)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32, as the CPU runs it
    corpus = SHAKESPEARE if run["corpus"] == "shakespeare" else PYTHON
    steps = max(1, run["chars"] // (run["train"]["batch_size"] * SEQ_LEN))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = trainer.train(
            DataConfig(sources=[str(corpus)], cache_dir=str(ROOT / ".benchdata" / "cache")),
            run["model"],
            TrainConfig(
                **run["train"],
                seq_len=SEQ_LEN,
                max_steps=steps,
                eval_every=min(500, max(50, steps // 4)),  # 500: the trainer's default, as the CPU runs
                log_every=10**9,
                device=device,
                precision="fp32",
            ),
            out=f"{tmp}/run",
        )
    return {**run, "steps": steps, "best_val_loss": result.best_val_loss, "secs": time.perf_counter() - start}


def sweep(device: str, jobs: int, out: Path, only: list[str], grid_name: str) -> None:
    def key(r: dict) -> str:
        return f"{r['corpus']}:{r['chars'] // M}:{r['candidate']}:{r['variant']}"

    everything = recipe_runs() if grid_name == "recipe" else runs()
    grid = sorted((r for r in everything if key(r) in only), key=lambda r: only.index(key(r))) if only else everything
    # Tokenize each corpus once before the workers race to cache it.
    for run in (next(r for r in grid if r["corpus"] == c) for c in {r["corpus"] for r in grid}):
        train_one({**run, "chars": run["train"]["batch_size"] * SEQ_LEN}, device)
    # spawn: the parent has touched CUDA, which a forked child cannot use.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool, out.open("a") as sink:
        futures = [pool.submit(train_one, run, device) for run in grid]
        for future in as_completed(futures):
            r = future.result()
            sink.write(json.dumps(r) + "\n")
            sink.flush()
            print(
                f"{r['corpus']:<12} {r['chars'] / M:>4.0f}M {r['candidate']:<7} {r['variant']:<13} "
                f"{r['steps']:>6} steps {r['best_val_loss']:.4f} ({r['secs']:.0f} s)",
                flush=True,
            )


def table(path: Path) -> None:
    """Rule runs as {corpus: {candidate: {chars: best loss}}}, the form charrnn/autosize.py holds."""
    found: dict = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r["variant"] == "rule":
            found.setdefault(r["corpus"], {}).setdefault(r["candidate"], {})[r["chars"]] = round(r["best_val_loss"], 4)
    print(json.dumps(found, indent=1, sort_keys=True))
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r["variant"] != "rule":
            base = found[r["corpus"]][r["candidate"]][r["chars"]]
            print(f"{r['candidate']:<7} {r['variant']:<13} {r['best_val_loss']:.4f} (rule {base:.4f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python-corpus", type=Path, help="write the Python-sources corpus here and stop")
    parser.add_argument("--table", type=Path, help="summarise a sweep's runs.jsonl")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--grid", choices=["size", "recipe"], default="size", help="the size table, or recipe checks")
    parser.add_argument("--only", default="", help="comma-separated corpus:millions:candidate:variant")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "size_sweep-runs.jsonl")
    args = parser.parse_args()
    if args.python_corpus:
        make_python_corpus(args.python_corpus)
    elif args.table:
        table(args.table)
    else:
        sweep(args.device, args.jobs, args.out, [o for o in args.only.split(",") if o], args.grid)
