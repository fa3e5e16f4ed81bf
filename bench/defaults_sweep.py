"""Choose training defaults for a CPU time budget by replaying that budget on a fast device.

Quality after T minutes on the CPU depends on how many characters the CPU trains in T minutes,
not on where they are trained. So: measure each configuration's training speed here (chars/s on
this CPU), turn the budget into a number of steps, and train each configuration for exactly those
steps on `--device` (a GPU makes a whole sweep take minutes). Prints best validation loss per
configuration and writes bench/results/defaults_sweep.json.

    python bench/defaults_sweep.py --measure-cpu                 # step 1, here: chars/s per config
    python bench/defaults_sweep.py --device cuda --budget 600    # step 2, on the fast device
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"
SPEEDS = ROOT / "bench" / "results" / "cpu_speeds.json"
# name: (model overrides, train overrides)
CANDIDATES = {
    "2x256": ({"hidden_size": 256}, {}),
    "2x256 lr5e-3": ({"hidden_size": 256}, {"lr": 5e-3}),
    "2x384": ({"hidden_size": 384}, {}),
    "2x384 lr5e-3 b32": ({"hidden_size": 384}, {"lr": 5e-3, "batch_size": 32}),
    "2x384 d0.1": ({"hidden_size": 384, "dropout": 0.1}, {}),
    "2x512": ({"hidden_size": 512}, {}),
    "1x512": ({"hidden_size": 512, "layers": 1}, {}),
    "gru 2x384": ({"hidden_size": 384, "cell": "gru"}, {}),
}


def _train(name: str, steps: int, device: str, tmp: str, **extra):
    from charrnn import trainer
    from charrnn.config import DataConfig, TrainConfig

    model, overrides = CANDIDATES[name]
    cfg = TrainConfig(
        **{
            "max_steps": steps,
            "eval_every": max(50, steps // 6),
            "device": device,
            "precision": "fp32",
            **overrides,
            **extra,
        }
    )
    return trainer.train(
        DataConfig(sources=[str(CORPUS)], cache_dir=f"{tmp}/cache"),
        model,
        cfg,
        out=f"{tmp}/{name.replace(' ', '_')}-{time.time_ns()}",
    )


def measure_cpu() -> None:
    speeds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CANDIDATES:
            result = _train(name, 40, "cpu", tmp, log_every=20, eval_every=10**9)
            speeds[name] = [r.chars_per_sec for r in result.history if r.chars_per_sec is not None][-1]
            print(f"{name:<20} {speeds[name]:>8,.0f} chars/s")
    SPEEDS.write_text(json.dumps(speeds, indent=1) + "\n")


def sweep(device: str, budget: float) -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 like the CPU
    speeds = json.loads(SPEEDS.read_text())
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (_, overrides) in CANDIDATES.items():
            chars_per_step = overrides.get("batch_size", 16) * 128
            steps = int(0.93 * speeds[name] * budget / chars_per_step)  # 7% for evaluations
            result = _train(name, steps, device, tmp)
            runs.append(
                {
                    "name": name,
                    "steps": steps,
                    "best": result.best_val_loss,
                    "curve": [(h.step, h.val_loss) for h in result.history if h.val_loss is not None],
                }
            )
            print(f"{name:<20} {steps:>6} steps  best val {result.best_val_loss:.4f}", flush=True)
    out = ROOT / "bench" / "results" / f"defaults_sweep-{int(budget)}s.json"
    out.write_text(json.dumps({"budget_s": budget, "cpu_speeds": speeds, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure-cpu", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget", type=float, default=600, help="CPU seconds to replay")
    args = parser.parse_args()
    measure_cpu() if args.measure_cpu else sweep(args.device, args.budget)
