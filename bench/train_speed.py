"""Training speed: charrnn's training step against a plain eager PyTorch loop, in one run.

For each configuration it measures trained characters per second and peak memory of
(a) charrnn's own training (`charrnn.trainer.train`, the real loop with its data path, logging
and clipping) and (b) a plain reference loop of identical configuration (embedding + nn.LSTM /
nn.GRU + linear, AdamW, clipping, contiguous batches), each in a fresh subprocess, and the
fraction of this machine's fp32 matmul peak (timed in the same run) that the step reaches.
For the cells PyTorch does not ship (lstm-peephole, lstm-cifg: charrnn/cells.py; indrnn:
charrnn/indrnn.py) the reference is PyTorch's nearest cell of the same size (REFERENCE_CELL), so
"x ref" is their speed relative to it.

    python bench/train_speed.py                       # CPU, all configurations
    python bench/train_speed.py --device cuda         # GPU
    python bench/train_speed.py --quick               # fewer steps, for a smoke test
    python bench/train_speed.py --configs lstm:2:512,lstm-peephole:2:512,lstm-cifg:2:512
    python bench/train_speed.py --configs lstm:2:256,rnn-relu:2:256,indrnn:2:256

Prints a table and writes bench/results/train_speed[-DEVICE].json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"
CONFIGS = [
    ("lstm", 2, 256),
    ("lstm", 2, 512),
    ("lstm", 3, 512),
    ("gru", 2, 512),
    ("lstm-peephole", 2, 512),
    ("lstm-cifg", 2, 512),
]
BATCH, SEQ = 64, 128
# PyTorch has no such cell: its nearest one of the same size stands in for the reference loop.
REFERENCE_CELL = {"lstm-peephole": "lstm", "lstm-cifg": "lstm", "indrnn": "rnn-relu"}


def _rnn(cell: str, layers: int, hidden: int, embed: int):
    """The cell's multi-layer module, as charrnn builds it (the cell registry)."""
    from charrnn.config import ModelConfig
    from charrnn.registry import cell_spec

    cfg = ModelConfig(vocab_size=1, cell=cell, hidden_size=hidden, embed_size=embed, layers=layers, dropout=0.0)
    return cell_spec(cell).build(cfg)


def flops_per_char(cell: str, layers: int, hidden: int, embed: int, vocab: int) -> float:
    """Multiply-adds x2 x3 (forward + backward) per trained character: the cell's weight matrices
    (its elementwise weights, peepholes or IndRNN's u, add no matrix product) and the output layer."""
    macs = sum(p.numel() for p in _rnn(cell, layers, hidden, embed).parameters() if p.dim() == 2) + hidden * vocab
    return 2 * 3 * macs


def matmul_peak(device: str) -> float:
    import torch

    n = 2048 if device == "cpu" else 8192
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    reps = 5 if device == "cpu" else 50
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_charrnn(cell: str, layers: int, hidden: int, steps: int, device: str, precision: str, compile: bool) -> dict:
    """charrnn's real training loop; chars/s from its own log of the second half of the steps."""
    from charrnn import trainer
    from charrnn.config import DataConfig, TrainConfig

    with tempfile.TemporaryDirectory() as tmp:
        result = trainer.train(
            DataConfig(sources=[str(CORPUS)], cache_dir=str(Path(tmp) / "cache")),
            {"cell": cell, "layers": layers, "hidden_size": hidden, "embed_size": 128, "dropout": 0.0},
            TrainConfig(
                batch_size=BATCH,
                seq_len=SEQ,
                max_steps=steps,
                log_every=steps // 2,
                eval_every=10**9,
                device=device,
                precision=precision,
                compile=compile,
                warmup_steps=1,
            ),
            out=str(Path(tmp) / "run"),
        )
    timed = [r for r in result.history if r.chars_per_sec is not None]
    return {"chars_per_sec": timed[-1].chars_per_sec}


def run_reference(cell: str, layers: int, hidden: int, steps: int, device: str) -> dict:
    """The plain loop a user would write from the PyTorch examples."""
    import numpy as np
    import torch
    from torch import nn

    text = CORPUS.read_text(encoding="utf-8")
    chars = sorted(set(text))
    ids = torch.from_numpy(np.array([chars.index(c) for c in text[:2_000_000]], dtype=np.int64))
    n = len(ids) // BATCH
    data = ids[: n * BATCH].view(BATCH, n).to(device)
    vocab = len(chars)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, 128)
            self.rnn = _rnn(REFERENCE_CELL.get(cell, cell), layers, hidden, 128)  # PyTorch's own module
            self.head = nn.Linear(hidden, vocab)

        def forward(self, x, h):
            y, h = self.rnn(self.embed(x), h)
            return self.head(y), h

    model = Model().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    hidden_state = None
    times = []
    for step in range(steps):
        t = time.perf_counter()
        i = (step * SEQ) % (n - SEQ - 1)
        x, y = data[:, i : i + SEQ], data[:, i + 1 : i + SEQ + 1]
        if hidden_state is not None:
            detach = isinstance(hidden_state, tuple)
            hidden_state = tuple(h.detach() for h in hidden_state) if detach else hidden_state.detach()
        logits, hidden_state = model(x, hidden_state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()  # the usual per-step logging sync
        _sync(device)
        times.append(time.perf_counter() - t)
    half = times[len(times) // 2 :]
    return {"chars_per_sec": BATCH * SEQ * len(half) / sum(half)}


def one(args: argparse.Namespace) -> None:
    """Child process: one measurement, its peak memory, as JSON on stdout."""
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    cell, layers, hidden = args.one.split(":")[:3]
    if args.impl == "reference":
        out = run_reference(cell, int(layers), int(hidden), args.steps, args.device)
    else:
        out = run_charrnn(cell, int(layers), int(hidden), args.steps, args.device, args.precision, args.compile)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


def measure(spec: str, impl: str, args: argparse.Namespace, precision: str = "auto", compile: bool = False) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--one",
        spec,
        "--impl",
        impl,
        "--steps",
        str(args.steps),
        "--device",
        args.device,
        "--precision",
        precision,
    ] + (["--compile"] if compile else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=0, help="steps per measurement (default: 8 on CPU, 200 on GPU)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--variants", default="", help="comma list of extra charrnn variants: bf16, fp16, compile")
    parser.add_argument(
        "--configs", default="", help="comma list of CELL:LAYERS:HIDDEN (default: all, --quick: the first)"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.steps = args.steps or (4 if args.quick else 8 if args.device == "cpu" else 200)
    if args.one:
        return one(args)
    if not CORPUS.exists():
        sys.exit(f"needs {CORPUS}")
    import torch

    peak = matmul_peak(args.device)
    configs = [tuple(c.split(":")) for c in args.configs.split(",")] if args.configs else CONFIGS
    configs = configs[:1] if args.quick and not args.configs else configs
    rows = []
    for cell, layers, hidden in configs:
        spec = f"{cell}:{layers}:{hidden}"
        ref = measure(spec, "reference", args)
        ours = measure(spec, "charrnn", args)
        row = {"config": f"{cell} {layers}x{hidden}", "batch": BATCH, "seq_len": SEQ, "reference": ref, "charrnn": ours}
        for variant in filter(None, args.variants.split(",")):
            row[variant] = measure(
                spec,
                "charrnn",
                args,
                precision=variant if variant != "compile" else "auto",
                compile=variant == "compile",
            )
        for key in [k for k in row if isinstance(row[k], dict) and "chars_per_sec" in row[k]]:
            fpc = flops_per_char(
                cell if key != "reference" else REFERENCE_CELL.get(cell, cell), int(layers), int(hidden), 128, 65
            )
            row[key]["peak_fraction"] = row[key]["chars_per_sec"] * fpc / peak
            row[key]["speedup_vs_reference"] = row[key]["chars_per_sec"] / ref.get("chars_per_sec", float("nan"))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    result = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "matmul_peak_gflops": peak / 1e9,
        "steps_per_measurement": args.steps,
        "rows": rows,
    }
    _print_table(result)
    out = (
        ROOT
        / "bench"
        / "results"
        / f"train_speed{'' if args.device == 'cpu' else '-' + args.device.replace(':', '')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")


def _print_table(result: dict) -> None:
    print(
        f"device {result['device']}, {result['threads']} threads, torch {result['torch']}, "
        f"fp32 matmul peak {result['matmul_peak_gflops']:.0f} GFLOP/s"
    )
    print(f"{'config':<20} {'impl':<10} {'chars/s':>10} {'x ref':>6} {'% peak':>7} {'peak RSS MB':>12}")
    for row in result["rows"]:
        for key, m in row.items():
            if not isinstance(m, dict):
                continue
            if "error" in m:
                print(f"{row['config']:<20} {key:<10} error: {m['error']}")
                continue
            print(
                f"{row['config']:<20} {key:<10} {m['chars_per_sec']:>10,.0f} {m['speedup_vs_reference']:>6.2f} "
                f"{100 * m['peak_fraction']:>6.0f}% {m['peak_rss_mb']:>12,.0f}"
                + (f"  GPU {m['peak_gpu_mb']:,.0f} MB" if "peak_gpu_mb" in m else "")
            )


if __name__ == "__main__":
    main()
