"""Start-up: how long a command takes beyond `import torch`, on a tiny checkpoint (2x64 LSTM).

Each round runs `python -c "import torch"` and then every command in a fresh process (wall clock);
a command's "beyond torch" is its time minus that round's `import torch`, and the table gives the
median over the rounds. charrnn freezes its objects before exiting, which spares it Python's final
garbage collection over torch's objects; a second baseline, `import torch` frozen the same way, shows
what that is worth (these machines are shared and noisy: rounds interleave the two, so a slow
minute slows both). The last column times the same command inside one process, from after
`import torch` to its exit, which no interpreter start-up or disk cache blurs.

    python bench/startup.py              # 9 rounds
    python bench/startup.py --rounds 15

Prints a table and writes bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import record  # noqa: E402

# Run in the measured process: import torch, then the command through the CLI's own entry point.
IN_PROCESS = """
import os, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from charrnn.cli import main
sys.argv = ["charrnn", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
os.write(int(os.environ["STARTUP_FD"]), f"{time.perf_counter() - t1}".encode())
"""


def build(root: Path) -> tuple[Path, Path]:
    """A tiny run (2x64 LSTM, 20 steps on standard-library source) and a 300-character text."""
    from charrnn import data, trainer
    from charrnn.config import DataConfig, TrainConfig

    corpus = root / "corpus.txt"
    corpus.write_text("".join(Path(f).read_text(encoding="utf-8") for f in data.stdlib_sources()[:5])[:100_000])
    trainer.train(
        DataConfig(sources=[str(corpus)], cache_dir=str(root / "cache")),
        {"hidden_size": 64, "embed_size": 16, "layers": 2},
        TrainConfig(max_steps=20, eval_every=10**9, precision="fp32"),
        out=str(root / "tiny"),
        command=["bench/startup.py"],
    )
    text = root / "text.txt"
    text.write_text(corpus.read_text()[:300])
    return root / "tiny", text


def wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def in_process(args: list[str]) -> float:
    """Seconds from after `import torch` to the end of the command, timed inside its process."""
    read, write = os.pipe()
    subprocess.run(
        [sys.executable, "-c", IN_PROCESS, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write,),
        env={**os.environ, "STARTUP_FD": str(write)},
        check=True,
    )
    os.close(write)
    with os.fdopen(read) as f:
        return float(f.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "startup.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="charrnn-bench-startup-") as tmp:
        run, text = build(Path(tmp))
        commands = {
            "sample --length 1": ["sample", "-c", str(run), "--length", "1"],
            "eval TEXT": ["eval", str(text), "-c", str(run)],
            "info RUN": ["info", str(run)],
            "score TEXT": ["score", str(text), "-c", str(run)],
            "--help": ["--help"],
        }
        torch_s, frozen_s = [], []
        walls, inner = {name: [] for name in commands}, {name: [] for name in commands}
        for _ in range(args.rounds):
            torch_s.append(wall([sys.executable, "-c", "import torch"]))
            frozen_s.append(wall([sys.executable, "-c", "import gc, torch; gc.freeze()"]))
            for name, cmd in commands.items():
                walls[name].append(wall([sys.executable, "-m", "charrnn", *cmd]))
                if name != "--help":
                    inner[name].append(in_process(cmd))
    rows = []
    for name in commands:
        beyond = [w - t for w, t in zip(walls[name], torch_s, strict=True)]
        rows.append(
            {
                "command": f"charrnn {name}",
                "wall_s": round(statistics.median(walls[name]), 3),
                "beyond_torch_s": round(statistics.median(beyond), 3),
                "in_process_beyond_torch_s": round(statistics.median(inner[name]), 3) if inner[name] else None,
            }
        )
    print(
        f"`python -c 'import torch'`: median {statistics.median(torch_s):.2f} s over {args.rounds} rounds; "
        f"with gc.freeze() before its exit (as charrnn does): {statistics.median(frozen_s):.2f} s"
    )
    print("| command | wall | beyond `import torch` | in-process, after `import torch` |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        inside = "(no torch)" if r["in_process_beyond_torch_s"] is None else f"{r['in_process_beyond_torch_s']:.2f} s"
        print(f"| `{r['command']}` | {r['wall_s']:.2f} s | {r['beyond_torch_s']:.2f} s | {inside} |")
    import typer

    meta = {
        "rounds": args.rounds,
        "import_torch_s": round(statistics.median(torch_s), 3),
        "import_torch_frozen_at_exit_s": round(statistics.median(frozen_s), 3),
        "typer": typer.__version__,
    }
    record.write(args.out, meta, rows)


if __name__ == "__main__":
    main()
