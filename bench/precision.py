"""Mixed precision against fp32: validation loss after the same steps, and speed, in one run.

    python bench/precision.py --device cuda --steps 600
    python bench/precision.py --device cpu --steps 100    # bf16 only where the CPU has native bf16

Trains the same model from the same seed on Tiny Shakespeare once per precision and reports the
best validation loss, its difference from fp32 in percent (the target is within 1%), and chars/s.
Writes bench/results/precision-DEVICE.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from charrnn import trainer
    from charrnn.config import DataConfig, TrainConfig
    from charrnn.errors import CharRNNError

    precisions = ["fp32", "bf16"] + (["fp16"] if args.device.startswith("cuda") else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for precision in precisions:
            try:
                result = trainer.train(
                    DataConfig(sources=[str(CORPUS)], cache_dir=f"{tmp}/cache"),
                    {"hidden_size": args.hidden_size, "layers": 2, "dropout": 0.0},
                    TrainConfig(
                        batch_size=args.batch_size,
                        seq_len=128,
                        max_steps=args.steps,
                        eval_every=args.steps,
                        log_every=max(1, args.steps // 4),
                        device=args.device,
                        precision=precision,
                        seed=1,
                    ),
                    out=f"{tmp}/{precision}",
                )
            except CharRNNError as e:
                rows.append({"precision": precision, "error": str(e)})
                continue
            speed = [r.chars_per_sec for r in result.history if r.chars_per_sec is not None][-1]
            rows.append({"precision": precision, "val_loss": result.best_val_loss, "chars_per_sec": speed})
    base = rows[0]
    print(f"{args.hidden_size}x2 LSTM, batch {args.batch_size}, seq 128, {args.steps} steps on {args.device}")
    print(f"{'precision':<10} {'val loss':>9} {'vs fp32':>8} {'chars/s':>11} {'speed-up':>9}")
    for row in rows:
        if "error" in row:
            print(f"{row['precision']:<10} {row['error']}")
            continue
        row["loss_diff_percent"] = 100 * (row["val_loss"] / base["val_loss"] - 1)
        row["speedup"] = row["chars_per_sec"] / base["chars_per_sec"]
        print(
            f"{row['precision']:<10} {row['val_loss']:>9.4f} {row['loss_diff_percent']:>+7.2f}% "
            f"{row['chars_per_sec']:>11,.0f} {row['speedup']:>8.2f}x"
        )
    out = ROOT / "bench" / "results" / f"precision-{args.device.replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": args.device, "steps": args.steps, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
