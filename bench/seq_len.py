"""Tokens per update at a fixed number of characters: batch x BPTT window, trained on the same text.

Each variant is a real `charrnn train` of the same model for the same number of characters (the cosine
schedule ending there), so only the number of updates and the window differ. The variants run side by
side, one intra-op thread each; a finished run in the work folder is read, not trained again.

    python bench/seq_len.py ../shared/corpora/tinyshakespeare.txt --chars 1500000 \\
        --variant 16x128 --variant 16x64 --variant 16x32 --variant 8x64

Prints a table and writes bench/results/seq_len.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import record  # noqa: E402

MODEL = ["--hidden-size", "384", "--layers", "2", "--dropout", "0.1", "--lr", "6e-3"]
FIXED = ["--precision", "fp32", "--seed", "1", "--device", "cpu", "--eval-every", "1000000"]


def command(corpus: str, chars: int, batch: int, seq_len: int, out: Path) -> list[str]:
    steps = round(chars / (batch * seq_len))
    cmd = [sys.executable, "-m", "charrnn", "train", corpus, *MODEL, *FIXED]
    return cmd + ["--batch-size", str(batch), "--seq-len", str(seq_len), "--max-steps", str(steps), "--out", str(out)]


def result(run: Path) -> dict | None:
    """The run's last record with a validation loss and its training speed, or None if it has not ended."""
    if not (run / "best.pt").exists():
        return None
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "val_loss" in r]
    speeds = [r["chars_per_sec"] for r in records if "chars_per_sec" in r]
    return {
        "steps": evals[-1]["step"],
        "chars": evals[-1]["chars"],
        "best_val_loss": min(r["val_loss"] for r in evals),
        "chars_per_sec_median": sorted(speeds)[len(speeds) // 2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--chars", type=int, default=1_500_000)
    parser.add_argument("--variant", action="append", help="BATCHxSEQ_LEN, e.g. 16x64", required=True)
    parser.add_argument("--work", default="/tmp/charrnn-bench-seq-len")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "seq_len.json"))
    args = parser.parse_args()
    work = Path(args.work)
    variants = [tuple(int(x) for x in v.split("x")) for v in args.variant]
    runs = {v: work / f"b{v[0]}-s{v[1]}" for v in variants}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = []
    for (batch, seq_len), run in runs.items():
        if result(run) is None:
            cmd = command(args.corpus, args.chars, batch, seq_len, run)
            log = (work / f"{run.name}.log").open("w") if work.mkdir(parents=True, exist_ok=True) is None else None
            started.append(subprocess.Popen(cmd, stdout=log, stderr=log, env=env))
    for process in started:
        process.wait()
    rows = [{"batch_size": b, "seq_len": s, **(result(run) or {})} for (b, s), run in runs.items()]
    print(f"| batch x seq_len | steps | best val loss (nats/char) | median chars/s |  ({args.chars:,} characters)")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['batch_size']}x{r['seq_len']} | {r['steps']} | {r['best_val_loss']:.4f} | {r['chars_per_sec_median']:,.0f} |"
        )
    meta = {
        "model": " ".join(MODEL + FIXED),
        "threads_per_run": 1,
        "note": "runs side by side on a shared machine: chars/s compare variants only within one table",
    }
    record.write(args.out, meta, rows)


if __name__ == "__main__":
    main()
