"""The demo's training settings: which reach the lowest validation loss in its 60 seconds.

    python bench/demo_sweep.py base s64 lr1e-2 s32lr            # AVX2 kernels, fp32 (the slow kind)
    python bench/demo_sweep.py --kind native base s32lr         # this CPU's own kernels (bf16 where it has it)

Each variant trains the demo's 2x256 LSTM on the standard library (as `charrnn demo` reads it, 5% held
out) for --budget seconds in a fresh process, alone, and prints the best validation loss, the cold-start
loss, steps and chars/s. Writes bench/results/demo_sweep-KIND.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = {"hidden_size": 256, "embed_size": 64, "layers": 2, "dropout": 0.0}
VARIANTS = {  # TrainConfig fields over the demo's old settings (batch 16, seq-len 128, lr 5e-3)
    "base": {},
    "b8": {"batch_size": 8},
    "s64": {"seq_len": 64},
    "lr1e-2": {"lr": 1e-2},
    "b8s64": {"batch_size": 8, "seq_len": 64},
    "s64lr": {"seq_len": 64, "lr": 1e-2},
    "b8s64lr": {"batch_size": 8, "seq_len": 64, "lr": 1e-2},
    "s32lr": {"seq_len": 32, "lr": 1e-2},
    "s32lr2": {"seq_len": 32, "lr": 2e-2},
    "s16lr": {"seq_len": 16, "lr": 1e-2},
}
KINDS = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "CHARRNN_CPU_BF16": "0"}, "native": {}}
CODE = """
import json, sys
from charrnn import data, trainer
from charrnn.config import DataConfig, TrainConfig
train, budget, out, cache = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
settings = dict(time_budget=budget, eval_every=10**9, warmup_steps=30, lr=5e-3, sample_every=0) | train
cfg = DataConfig(sources=data.stdlib_sources(), val_frac=0.05, cache_dir=cache)
r = trainer.train(cfg, json.loads(sys.argv[5]), TrainConfig(**settings), out=out)
print(json.dumps({"val_loss": r.best_val_loss, "cold_start_loss": r.history[-1].cold_start_loss,
                  "steps": r.steps, "chars_per_sec": r.chars_per_sec}))
"""


def run(name: str, budget: float, kind: str, work: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **KINDS[kind]}
    out = tempfile.mkdtemp(dir=work)
    args = [json.dumps(VARIANTS[name]), str(budget), out + "/run", str(work / "cache"), json.dumps(MODEL)]
    done = subprocess.run([sys.executable, "-c", CODE, *args], env=env, capture_output=True, text=True, check=True)
    return {"variant": name, "train": VARIANTS[name], **json.loads(done.stdout.splitlines()[-1])}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument("--kind", choices=sorted(KINDS), default="avx2")
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--work", type=Path, default=Path("/tmp/demo-sweep"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.variants:
        rows.append(run(name, args.budget, args.kind, args.work))
        print(
            f"{name:<10} val {rows[-1]['val_loss']:.3f}  cold start {rows[-1]['cold_start_loss']:.3f}  "
            f"{rows[-1]['steps']} steps  {rows[-1]['chars_per_sec']:,.0f} chars/s",
            flush=True,
        )
    record.write(
        ROOT / "bench" / "results" / f"demo_sweep-{args.kind}.json", {"budget_s": args.budget, "model": MODEL}, rows
    )
