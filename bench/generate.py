"""Generation speed: charrnn's decoding loop against a plain eager PyTorch loop.

charrnn's default step on a CPU keeps its weights in fp16 (charrnn.model.HalfStepper); the
"fp32" rows run the exact fp32 step.

The plain loop is the way the classic char-rnn and the PyTorch examples generate: the model's
nn.LSTM / nn.GRU (eval mode) called once per character, softmax, torch.multinomial, .item().
Models are randomly initialised 2x512 networks over a 65-character vocabulary (Tiny
Shakespeare's), so no training is needed; speed does not depend on the weights.

    python bench/generate.py                 # CPU, LSTM and GRU
    python bench/generate.py --device cuda
    python bench/generate.py --only beam     # beam search's cost per character against beam 1

Prints a table and writes bench/results/generate.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import record
import torch

from charrnn.config import ModelConfig, SampleConfig
from charrnn.model import CharRNN
from charrnn.sample import generate, step_precision
from charrnn.tokenizers import CharTokenizer

CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PRIME = "ROMEO:\n"


def plain_loop(model: CharRNN, prime: torch.Tensor, length: int, batch: int, device: torch.device) -> int:
    """Generate `length` characters for each of `batch` rows, one model call per character."""
    embed, rnn, head = model.embed, model.rnn, model.head
    with torch.no_grad():
        out, state = rnn(embed(prime.to(device)[None].expand(batch, -1)))
        logits = head(out[:, -1])
        ids: list[list[int]] = []
        for _ in range(length):
            probs = torch.softmax(logits, dim=-1)
            nxt = torch.multinomial(probs, 1)
            ids.append(nxt.item() if batch == 1 else nxt.squeeze(1).tolist())
            out, state = rnn(embed(nxt), state)
            logits = head(out[:, -1])
    return length * batch


def charrnn_loop(model: CharRNN, tok: CharTokenizer, cfg: SampleConfig, device: torch.device) -> int:
    """charrnn's generate, streaming every character to a callback as the CLI does."""
    streamed: list[str] = []
    samples = generate(model, tok, cfg, device, emit=lambda i, text: streamed.append(text))
    return sum(len(s.text) for s in samples) if cfg.beam is None else len(samples[0].text)


def timed(
    cases: list[tuple[str, Callable[[], int]]], device: torch.device, repeats: int
) -> dict[str, tuple[float, int]]:
    """Median wall time of each case over `repeats` rounds, and the characters one run makes.

    Every round runs every case once, so load from other processes falls on all cases alike.
    """
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    chars: dict[str, int] = {}
    for round_ in range(repeats + 1):
        for name, fn in cases:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            chars[name] = fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_:  # the first round warms up
                times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(times[name]), chars[name]) for name, _ in cases}


def bench_cell(cell: str, args: argparse.Namespace, device: torch.device) -> list[dict]:
    torch.manual_seed(0)
    tok = CharTokenizer(list(CHARS))
    model = CharRNN(ModelConfig(vocab_size=len(CHARS), cell=cell, hidden_size=512, layers=2)).to(device).eval()
    prime = torch.as_tensor(tok.encode(PRIME), dtype=torch.long)
    n = args.length

    def ours(**kw) -> Callable[[], int]:
        return lambda: charrnn_loop(model, tok, SampleConfig(length=n, prime=PRIME, seed=1, **kw), device)

    cases: list[tuple[str, Callable[[], int]]] = []
    if args.only in (None, "sample"):
        cases += [
            ("plain loop, batch 1", lambda: plain_loop(model, prime, n, 1, device)),
            ("charrnn sample, batch 1", ours()),
            ("charrnn sample fp32, batch 1", ours(precision="fp32")),
            ("plain loop, 32 samples", lambda: plain_loop(model, prime, n, 32, device)),
            ("charrnn sample, 32 samples", ours(num_samples=32)),
            ("charrnn sample fp32, 32 samples", ours(num_samples=32, precision="fp32")),
        ]
    if args.only in (None, "beam"):
        cases += [(f"charrnn beam {k}", ours(beam=k)) for k in args.beams]
        cases += [(f"charrnn beam {k} fp32", ours(beam=k, precision="fp32")) for k in args.beams]
    rows = [
        {"cell": cell, "case": name, "seconds": seconds, "chars": chars, "chars_per_sec": chars / seconds}
        for name, (seconds, chars) in timed(cases, device, args.repeats).items()
    ]
    default_precision = step_precision(SampleConfig(), model, device)
    for r in rows:
        if r["case"].startswith("charrnn"):
            r["precision"] = "fp32" if "fp32" in r["case"] else default_precision
    by = {r["case"]: r for r in rows}
    for r in rows:
        if r["case"].startswith("charrnn sample"):
            plain = by["plain loop," + r["case"].split(",")[1]]
            r["vs_plain_loop"] = r["chars_per_sec"] / plain["chars_per_sec"]
        if r["case"].startswith("charrnn beam") and 1 in args.beams:
            # Cost per generated character relative to beam width 1 at the same precision.
            one = by["charrnn beam 1" + (" fp32" if r["case"].endswith("fp32") else "")]
            r["cost_vs_beam_1"] = r["seconds"] / r["chars"] / (one["seconds"] / one["chars"])
    return rows


def print_table(rows: list[dict]) -> None:
    print(
        f"| {'cell':4} | {'case':31} | {'chars/s':>9} | {'ms/char':>8} | {'vs plain loop':>13} | {'cost vs beam 1':>14} |"
    )
    print(f"| {'-' * 4} | {'-' * 31} | {'-' * 9}:| {'-' * 8}:| {'-' * 13}:| {'-' * 14}:|")
    for r in rows:
        ratio = f"{r['vs_plain_loop']:.2f}x" if "vs_plain_loop" in r else ""
        cost = f"{r['cost_vs_beam_1']:.2f}x" if "cost_vs_beam_1" in r else ""
        ms = 1000 * r["seconds"] / r["chars"]
        print(f"| {r['cell']:4} | {r['case']:31} | {r['chars_per_sec']:9.0f} | {ms:8.3f} | {ratio:>13} | {cost:>14} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"])
    parser.add_argument("--length", type=int, default=1000, help="characters generated per sample")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--only", choices=["sample", "beam"], help="run only the sampling rows or the beam rows")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case; the median is reported")
    parser.add_argument("--threads", type=int, help="torch CPU threads \\[default: torch's choice]")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "generate.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [row for cell in args.cells for row in bench_cell(cell, args, device)]
    print_table(rows)
    meta = {
        "device": args.device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "length": args.length,
        "repeats": args.repeats,
        "cpu_capability": torch.backends.cpu.get_cpu_capability() if args.device == "cpu" else None,
    }
    record.write(args.out, meta, rows)


if __name__ == "__main__":
    main()
