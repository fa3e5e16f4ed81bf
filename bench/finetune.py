"""Fine-tuning against training from scratch, at the same number of steps, on a small corpus.

    python bench/finetune.py                       # a few minutes on a 2-core CPU
    python bench/finetune.py --pretrain-steps 3000 --steps 100 300 1000

Pretrains a model on the Python standard library's top-level modules (/usr/lib/python3.X/*.py, a few
MB; the `email` package is not among them), then trains on the `email` package's code for each budget
of steps twice, with the same settings and seed: once fine-tuned from the pretrained run
(`charrnn train --init-from`), once from scratch. Validation: the package's last files (sorted by
path), held out as a file; each run is scored with `charrnn eval --json` on it. The pretrained
model's score on it before any fine-tuning is shown as step 0.
Prints a table and writes bench/results/finetune.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import record  # noqa: E402  (bench/, this script's folder, is on the path)

MODEL = {"hidden_size": 256, "embed_size": 64, "layers": 2, "dropout": 0.0}


def stdlib_dir() -> Path:
    """The system Python's standard library (the one under /usr/lib), else this interpreter's."""
    found = sorted(Path("/usr/lib").glob("python3.*/email"))
    if found:
        return found[-1].parent
    import sysconfig

    return Path(sysconfig.get_paths()["stdlib"])


def write_corpora(lib: Path, package: str, val_files: int, tmp: Path) -> tuple[Path, Path, Path]:
    """The pretraining corpus (top-level modules), the package's training and validation text."""
    pre, train, val = tmp / "stdlib.txt", tmp / f"{package}-train.txt", tmp / f"{package}-val.txt"
    pre.write_text("".join(p.read_text(encoding="utf-8") for p in sorted(lib.glob("*.py"))), encoding="utf-8")
    files = sorted((lib / package).rglob("*.py"))
    train.write_text("".join(p.read_text(encoding="utf-8") for p in files[:-val_files]), encoding="utf-8")
    val.write_text("".join(p.read_text(encoding="utf-8") for p in files[-val_files:]), encoding="utf-8")
    return pre, train, val


def bits_per_char(run: Path, val: Path) -> float:
    """`charrnn eval --json` of the run's best.pt on the validation file."""
    done = subprocess.run(
        [sys.executable, "-m", "charrnn", "eval", str(val), "-c", str(run), "--json", "--device", "cpu"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return json.loads(done.stdout)["bits_per_char"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrain-steps", type=int, default=800)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--package", default="email")
    parser.add_argument("--val-files", type=int, default=6, help="the package's last files held out")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    args = parser.parse_args()

    import torch

    from charrnn import trainer
    from charrnn.config import DataConfig, TrainConfig

    torch.set_num_threads(2)
    lib = stdlib_dir()

    def limits(steps: int) -> TrainConfig:
        return TrainConfig(
            batch_size=args.batch_size,
            seq_len=args.seq_len,
            max_steps=steps,
            eval_every=steps,
            log_every=max(1, steps // 5),
            warmup_steps=max(1, steps // 10),
            precision="fp32",
            device="cpu",
            seed=1,
        )

    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pre, train, val = write_corpora(lib, args.package, args.val_files, tmp)

        def data(source: Path) -> DataConfig:
            return DataConfig(sources=[str(source)], val_file=str(val), cache_dir=str(tmp / "cache"))

        start = time.perf_counter()
        trainer.train(data(pre), MODEL, limits(args.pretrain_steps), out=str(tmp / "pretrained"))
        pretrain_s = time.perf_counter() - start
        zero_shot = bits_per_char(tmp / "pretrained", val)
        rows.append({"steps": 0, "fine_tuned_bpc": zero_shot, "scratch_bpc": None})
        for steps in args.steps:
            row: dict = {"steps": steps}
            for name, init in (("fine_tuned", str(tmp / "pretrained")), ("scratch", None)):
                out = tmp / f"{name}-{steps}"
                began = time.perf_counter()
                model = {} if init else MODEL
                trainer.train(data(train), model, limits(steps), out=str(out), init_from=init)
                row[f"{name}_s"] = round(time.perf_counter() - began, 1)
                row[f"{name}_bpc"] = bits_per_char(out, val)
            rows.append(row)
        sizes = {
            "pretrain_chars": pre.stat().st_size,
            "train_chars": train.stat().st_size,
            "val_chars": val.stat().st_size,
        }

    print(
        f"pretrained {args.pretrain_steps} steps on {sizes['pretrain_chars']:,} bytes of {lib}/*.py ({pretrain_s:.0f} s)"
    )
    print(f"then {args.package}: {sizes['train_chars']:,} bytes to train on, {sizes['val_chars']:,} held out")
    print(f"{'steps':>6} {'fine-tuned bpc':>15} {'from scratch bpc':>17}")
    for r in rows:
        scratch = "-" if r["scratch_bpc"] is None else f"{r['scratch_bpc']:.3f}"
        print(f"{r['steps']:>6} {r['fine_tuned_bpc']:>15.3f} {scratch:>17}")
    result = {
        "command": "python bench/finetune.py " + " ".join(sys.argv[1:]),
        "cpu": record.cpu_name(),
        "torch": torch.__version__,
        "stdlib": str(lib),
        "package": args.package,
        "model": MODEL,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "pretrain_steps": args.pretrain_steps,
        "pretrain_seconds": round(pretrain_s, 1),
        **sizes,
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / "finetune.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
