"""Where a text sampled in a shared batch parts from the same seed's text sampled alone.

`charrnn serve` steps concurrent requests as rows of one batch. Each row chooses its tokens with its own
generator, so its text is the one it would get alone unless the step kernel rounds a row differently at
another batch size and two tokens' probabilities are that close. This measures how often that happens:
`--rows` samples drawn as one batch (seeds seed .. seed+rows-1, what num_samples does and what the
server's batch does) against each drawn alone, at each precision.

    python bench/parting.py checkpoints/shakespeare/best.pt --rows 32 --length 500

Prints a table and writes bench/results/parting.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import record  # noqa: E402

from charrnn import checkpoint as ckpts  # noqa: E402
from charrnn.config import SampleConfig  # noqa: E402
from charrnn.sample import generate  # noqa: E402


def first_difference(a: str, b: str) -> int | None:
    """The index of the first character where a and b differ, or None if equal."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def compare(model, tokenizer, precision: str, temperature: float, rows: int, length: int, seed: int) -> dict:
    settings = {"length": length, "temperature": temperature, "precision": precision, "prime": "\n"}
    together = generate(model, tokenizer, SampleConfig(num_samples=rows, seed=seed, **settings))
    alone = [generate(model, tokenizer, SampleConfig(seed=seed + i, **settings))[0] for i in range(rows)]
    parts = [first_difference(t.text, a.text) for t, a in zip(together, alone, strict=True)]
    parted = sorted(p for p in parts if p is not None)
    return {
        "precision": precision,
        "temperature": temperature,
        "rows": rows,
        "length": length,
        "parted": len(parted),
        "parted_at": parted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "parting.json"))
    args = parser.parse_args()
    model, tokenizer = ckpts.build_model(ckpts.load(Path(args.checkpoint)))
    model.eval()
    rows = [
        compare(model, tokenizer, precision, temperature, args.rows, args.length, args.seed)
        for precision in ("fp16", "fp32")
        for temperature in (0.0, 0.8, 1.0)
    ]
    print(f"| precision | temperature | texts parted (of {args.rows}) | at character |")
    print("| --- | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r['precision']} | {r['temperature']} | {r['parted']} | {', '.join(map(str, r['parted_at'])) or '-'} |"
        )
    meta = {
        "threads": torch.get_num_threads(),
        "model": f"{model.cfg.cell} {model.cfg.layers}x{model.cfg.hidden_size}",
    }
    record.write(args.out, meta, rows)


if __name__ == "__main__":
    main()
