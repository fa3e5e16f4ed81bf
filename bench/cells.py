"""The cells side by side: each trained for the same wall-clock budget on one corpus.

Trains every registered cell (charrnn/registry.py) one after another through
charrnn's own training loop (`charrnn.trainer.train`), every one with `charrnn train`'s defaults
(2x384, embedding 128, dropout 0.2, batch 16, seq-len 128, lr 3e-3, seed 1337) and the same
`--budget` of training time. Only the final evaluation on the held-out 10% runs, after the
budget, so no cell spends its budget evaluating; with the cosine schedule it is the best one.

    python bench/cells.py                                   # 3 minutes per cell, Tiny Shakespeare
    python bench/cells.py --budget 2m --cells lstm,lstm-cifg --corpus input.txt
    python bench/cells.py --steps 400 --cells lstm,lstm-peephole,lstm-cifg    # equal steps instead

Prints a table (best validation bits per character, steps, characters trained, chars/s) and
writes bench/results/cells.json (cells-N-steps.json with --steps).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's charrnn, whatever is installed

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from charrnn import checkpoint, config, trainer  # noqa: E402
from charrnn.config import CELLS, DataConfig, TrainConfig  # noqa: E402
from charrnn.model import num_parameters  # noqa: E402
from charrnn.ui import TrainProgress  # noqa: E402


def run_cell(cell: str, corpus: str, budget: float | None, steps: int | None, cache: Path, out: Path) -> dict:
    result = trainer.train(
        DataConfig(sources=[corpus], cache_dir=str(cache)),
        {"cell": cell},
        TrainConfig(time_budget=budget, max_steps=steps, eval_every=10**9, log_every=100),
        out=str(out / cell),
        progress=TrainProgress(enabled=False),
        command=["bench/cells.py", cell],
    )
    final = result.history[-1]
    return {
        "cell": cell,
        "best_val_bpc": result.best_val_bpc,
        "best_val_loss": result.best_val_loss,
        "steps": result.steps,
        "chars": final.chars,
        "train_seconds": final.time,
        "chars_per_sec": final.chars / final.time,
        "parameters": num_parameters(checkpoint.build_model(checkpoint.load(result.run_dir / "best.pt"))[0]),
    }


def table(rows: list[dict], limit: str, corpus: str) -> Table:
    out = Table(title=f"{Path(corpus).name}: each cell trained {limit} (charrnn train defaults, 2x384)")
    for name in ("cell", "parameters", "best val bits/char", "steps", "chars trained", "chars/s"):
        out.add_column(name, justify="left" if name == "cell" else "right")
    for r in sorted(rows, key=lambda r: r["best_val_bpc"]):
        out.add_row(
            r["cell"],
            f"{r['parameters']:,}",
            f"{r['best_val_bpc']:.3f}",
            f"{r['steps']:,}",
            f"{r['chars']:,}",
            f"{r['chars_per_sec']:,.0f}",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"))
    parser.add_argument("--budget", default="3m", help="training time per cell: 90s, 3m, ...")
    parser.add_argument("--steps", type=int, help="train this many steps instead of for --budget")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated, from " + ", ".join(CELLS))
    args = parser.parse_args()
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    if not Path(args.corpus).is_file() or any(c not in CELLS for c in cells):
        sys.exit(f"needs a corpus file ({args.corpus}) and cells from {', '.join(CELLS)}")
    budget = None if args.steps else config.parse_duration(args.budget)
    rows = []
    with tempfile.TemporaryDirectory(prefix="charrnn-cells-") as tmp:
        for cell in cells:
            rows.append(run_cell(cell, args.corpus, budget, args.steps, Path(tmp) / "cache", Path(tmp)))
            print(json.dumps(rows[-1]), file=sys.stderr)
    limit = f"{args.steps} steps" if args.steps else f"{budget:g} s"
    Console(width=120).print(table(rows, limit, args.corpus))
    result = {
        "command": " ".join(["python", "bench/cells.py", *sys.argv[1:]]),
        "corpus": Path(args.corpus).name,
        "budget_seconds": budget,
        "steps": args.steps,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / ("cells.json" if not args.steps else f"cells-{args.steps}-steps.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
