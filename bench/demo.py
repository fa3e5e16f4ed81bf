"""README command 1 on a busy machine: `charrnn demo` at half its budget while a CPU hog runs.

    python bench/demo.py                                   # 30 s, one core hogged, this checkout
    python bench/demo.py --before ../charrnn-27d505f       # the same for an older checkout too
    python bench/demo.py --budget 60s --hog 0              # the demo as it ships, on an idle machine

For each checkout it runs the real command (with a hog of --hog processes from bench/hog.py beside it
for the whole run) and checks the sample as tests/test_cold_start.py does: the share of printable
characters, the share of identifier-like words the standard library has, and (where the demo prints
them) the validation and cold-start losses. Writes bench/results/demo.json with every sample.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import hog  # noqa: E402
import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRINTABLE = re.compile(r"[\x20-\x7e\n\t]")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
LOSSES = re.compile(r"best val loss ([\d.]+) nats .*?(?:cold start ([\d.]+))?;")


def stdlib_words() -> set[str]:
    sys.path.insert(0, str(ROOT))
    from charrnn.data import stdlib_sources

    return {w for f in stdlib_sources() for w in WORD.findall(Path(f).read_text(encoding="utf-8"))}


def demo(tree: Path, budget: str, hogs: int, words: set[str]) -> dict:
    with tempfile.TemporaryDirectory() as cwd:
        busy = hog.start(hogs, 3600) if hogs else None
        try:
            cmd = [sys.executable, "-m", "charrnn", "demo", "--time-budget", budget]
            done = subprocess.run(
                cmd, cwd=cwd, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True
            )
        finally:
            if busy is not None:
                busy.terminate()
                busy.join()
    sample = done.stdout
    found = WORD.findall(sample)
    losses = LOSSES.search(done.stderr.replace("\n", " "))
    val, cold = (float(v) if v else None for v in losses.groups()) if losses else (None, None)
    return {
        "tree": str(tree),
        "exit": done.returncode,
        "printable": len(PRINTABLE.findall(sample)) / max(1, len(sample)),
        "known_words": sum(w in words for w in found) / max(1, len(found)),
        "val_loss": val,
        "cold_start_loss": cold,
        "sample": sample,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="30s")
    parser.add_argument("--hog", type=int, default=1, help="CPU hog processes beside the demo")
    parser.add_argument("--before", type=Path, help="an older checkout to run as well")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "demo.json")
    args = parser.parse_args()
    words, rows = stdlib_words(), []
    for _ in range(args.repeats):
        for tree in ([args.before] if args.before else []) + [ROOT]:
            row = demo(tree, args.budget, args.hog, words)
            rows.append(row)
            print(
                f"{tree.name:<20} printable {row['printable']:.3f}  known words {row['known_words']:.2f}  "
                f"val {row['val_loss']}  cold start {row['cold_start_loss']}\n  {row['sample'][:160]!r}"
            )
    record.write(args.out, {"budget": args.budget, "hog_processes": args.hog}, rows)
