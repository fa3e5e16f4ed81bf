"""How to run the LSTM variants' time loop fast on the CPU: TorchScript, torch.compile or eager.

Times one training step (forward and backward) of a 2-layer peephole LSTM stack at
charrnn/cells.py's sizes, the input projections always one matrix product outside the loop,
the loop itself done in each of these ways:

- handwritten + TorchScript: forward and backward loops written out, scripted (what charrnn uses);
- handwritten + eager: the same loops as plain Python;
- handwritten + torch.compile: the same loops compiled (the 128-step loop is unrolled);
- autograd + TorchScript / eager / torch.compile: a loop of the step equations, differentiated by autograd
  (compile: the step function compiled, the loop around it in Python);
- nn.LSTM of the same size, for scale (no peepholes).

    python bench/cell_loop.py                    # 2x512, batch 64, 128 steps
    python bench/cell_loop.py --threads 1 --reps 2   # one thread: steadier on a shared machine
    python bench/cell_loop.py --skip ''              # also compile the unrolled handwritten loops (slow)

Prints seconds per step and chars/s; adds them to bench/results/cell_loop.json. Compile time is
measured separately and left out of the step times.
"""

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's charrnn, whatever is installed

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from charrnn import cells  # noqa: E402


def autograd_loop(xw, h, c, w_hh, peep: torch.Tensor | None, coupled: bool):
    hs = []
    for t in range(xw.shape[0]):
        h, c, _ = STEP(torch.addmm(xw[t], h, w_hh.t()), c, peep, coupled)
        hs.append(h)
    return torch.stack(hs), c


STEP: Callable = cells.step_equations


def stack_forward(layer: cells.LSTMVariant, x: torch.Tensor, loop: Callable | None) -> torch.Tensor:
    """The module's forward with the recurrence replaced by `loop` (None: the module's own)."""
    if loop is None:
        return layer(x)[0]
    inp = x.transpose(0, 1)
    n = layer.hidden_size
    for k in range(layer.num_layers):
        w_ih, w_hh, b, peep = layer.layer(k)
        zeros = inp.new_zeros(inp.shape[1], n)
        inp, _ = loop(F.linear(inp, w_ih, b).contiguous(), zeros, zeros, w_hh, peep, layer.coupled)
    return inp.transpose(0, 1)


def time_steps(fn: Callable[[], torch.Tensor], params, reps: int) -> tuple[float, float]:
    """(first call incl. compilation, median of `reps` later calls) in seconds for forward+backward."""
    times = []
    for _ in range(reps + 1):
        t = time.perf_counter()
        fn().square().mean().backward()
        for p in params:
            p.grad = None
        times.append(time.perf_counter() - t)
    later = sorted(times[1:])
    return times[0], later[len(later) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    # Compiling the unrolled 128-step loops ran over 6 minutes on the 2-core CPU without finishing
    # (and would recompile for every sequence length), so that case is left out unless asked for.
    parser.add_argument(
        "--skip", default="handwritten + torch.compile", help="comma list of case names to leave out ('' for none)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.seq_len, 128)
    layer = cells.LSTMVariant(128, args.hidden, args.layers, peephole=True)
    lstm = nn.LSTM(128, args.hidden, args.layers, batch_first=True)
    scripted = cells.LOOPS
    eager = (cells.forward_loop, cells.backward_loop)

    def handwritten(loops):
        def run():
            cells.LOOPS = loops
            return stack_forward(layer, x, None)

        return run

    def autograd(step, loop=autograd_loop):
        def run():
            global STEP
            STEP = step
            return stack_forward(layer, x, loop)

        return run

    cases = {
        "nn.LSTM": (lambda: lstm(x)[0], list(lstm.parameters())),
        "handwritten + TorchScript": (handwritten(scripted), None),
        "handwritten + eager": (handwritten(eager), None),
        "handwritten + torch.compile": (handwritten(tuple(torch.compile(f) for f in eager)), None),
        "autograd + TorchScript": (autograd(cells.cell_step, torch.jit.script(autograd_loop)), None),
        "autograd + eager": (autograd(cells.step_equations), None),
        "autograd + torch.compile (step)": (autograd(torch.compile(cells.step_equations)), None),
    }
    rows = []
    for name, (fn, params) in cases.items():
        if name in args.skip.split(","):
            continue
        first, step = time_steps(fn, params or list(layer.parameters()), args.reps)
        rows.append(
            {"case": name, "first_call_s": first, "step_s": step, "chars_per_sec": args.batch * args.seq_len / step}
        )
        print(f"{name:<34} first {first:7.2f} s   step {step:6.3f} s   {rows[-1]['chars_per_sec']:>9,.0f} chars/s")
    cells.LOOPS = scripted
    result = {
        "config": f"{args.layers}x{args.hidden} peephole, batch {args.batch}, {args.seq_len} steps",
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "rows": rows,
    }
    # One entry per configuration: a run replaces the earlier one of the same configuration.
    out = ROOT / "bench" / "results" / "cell_loop.json"
    runs = [r for r in (json.loads(out.read_text()) if out.exists() else []) if r["config"] != result["config"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([*runs, result], indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
