"""Training curves from metrics.jsonl: a PNG with matplotlib, or text charts in the terminal."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from charrnn.errors import CharRNNError
from charrnn.metrics import MetricsRecord, read_metrics

log = logging.getLogger("charrnn")

Series = tuple[str, list[float], list[float]]  # label, x values, y values
Field = Callable[[MetricsRecord], float | None]  # a field of each record, None where it is absent
Run = tuple[str, list[MetricsRecord]]  # label, records


def chars(r: MetricsRecord) -> float:
    return r.chars


def seconds(r: MetricsRecord) -> float:
    return r.time


def train_loss(r: MetricsRecord) -> float | None:
    return r.train_loss


def val_loss(r: MetricsRecord) -> float | None:
    return r.val_loss


def cold_start_loss(r: MetricsRecord) -> float | None:
    return r.cold_start_loss


def grad_norm(r: MetricsRecord) -> float | None:
    return r.grad_norm


def learning_rate(r: MetricsRecord) -> float | None:
    return r.lr


MARKS = "*o+x#@%&=~"


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or None when matplotlib is absent."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_labels(runs: list[str]) -> list[str]:
    """Folder names, or the paths as given where two folders share a name."""
    names = [Path(r).name if Path(r).suffix != ".pt" else Path(r).parent.name for r in runs]
    return names if len(set(names)) == len(names) else list(runs)


def series(records: list[MetricsRecord], x: Field, y: Field) -> tuple[list[float], list[float]]:
    points = [(x(r), y(r)) for r in records if y(r) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def write_png(runs: list[Run], out: Path, size: tuple[int, int]) -> None:
    """Loss against characters and wall time, gradient norm and learning rate; runs overlaid."""
    plt = pyplot()
    if plt is None:
        raise CharRNNError(
            f"writing {out} needs matplotlib, which is not installed: pip install matplotlib (or --terminal)"
        )
    width, height = size
    fig, axes = plt.subplots(2, 2, figsize=(width / 100, height / 100), dpi=100)
    panels = [
        (axes[0, 0], chars, "loss (nats/token)", "loss against characters seen"),
        (axes[0, 1], seconds, "loss (nats/token)", "loss against wall time"),
        (axes[1, 0], chars, "gradient norm (before clipping)", "gradient norm"),
        (axes[1, 1], chars, "learning rate", "learning rate"),
    ]
    for i, (label, records) in enumerate(runs):
        color = f"C{i % 10}"
        for ax, x, _, _ in panels[:2]:
            ax.plot(*series(records, x, train_loss), color=color, alpha=0.8, label=f"{label} train")
            ax.plot(*series(records, x, val_loss), "o--", color=color, markersize=4, label=f"{label} val")
            cold = series(records, x, cold_start_loss)
            if cold[0]:
                ax.plot(*cold, "^:", color=color, markersize=4, alpha=0.7, label=f"{label} val, cold start")
        panels[2][0].plot(*series(records, chars, grad_norm), color=color, linewidth=0.9, label=label)
        panels[3][0].plot(*series(records, chars, learning_rate), color=color, label=label)
    for ax, x, ylabel, title in panels:
        ax.set(title=title, xlabel="characters seen" if x is chars else "wall time (s)", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    panels[2][0].set_yscale("log")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def text_chart(title: str, lines: list[Series], width: int = 72, height: int = 16) -> str:
    """Points of each series on a character grid, one mark per series, with a legend."""
    lines = [s for s in lines if s[1]]
    if not lines:
        return f"{title}: no data\n"
    xs = [x for _, sx, _ in lines for x in sx]
    ys = [y for _, _, sy in lines for y in sy if math.isfinite(y)]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    grid = [[" "] * width for _ in range(height)]
    for mark, (_, sx, sy) in zip(MARKS * 10, lines, strict=False):
        for x, y in zip(sx, sy, strict=True):
            if not math.isfinite(y):
                continue
            col = round((x - x0) / ((x1 - x0) or 1) * (width - 1))
            row = round((y1 - y) / ((y1 - y0) or 1) * (height - 1))
            grid[row][col] = mark
    label_at = {0: y1, height // 2: (y0 + y1) / 2, height - 1: y0}
    body = [
        f"{label_at[r]:>9.3g} |" + "".join(row) if r in label_at else " " * 10 + "|" + "".join(row)
        for r, row in enumerate(grid)
    ]
    axis = " " * 10 + "+" + "-" * width
    ticks = " " * 11 + f"{x0:<.3g}".ljust(width - 10) + f"{x1:>10.3g}"
    legend = "   ".join(f"{m} {label}" for m, (label, _, _) in zip(MARKS * 10, lines, strict=False))
    return "\n".join([title, *body, axis, ticks, "  " + legend, ""])


def text_report(runs: list[Run]) -> str:
    """The same curves as the PNG, drawn with characters for a terminal without matplotlib."""

    def curves(x: Field, ys: list[tuple[str, Field]]) -> list[Series]:
        return [(f"{label} {name}", *series(r, x, y)) for label, r in runs for name, y in ys]

    losses = [("train", train_loss), ("val", val_loss), ("cold start", cold_start_loss)]
    return "\n".join(
        [
            text_chart("loss (nats/token) against characters seen", curves(chars, losses)),
            text_chart("loss (nats/token) against wall time (s)", curves(seconds, losses)),
            text_chart(
                "gradient norm (before clipping) against characters seen", curves(chars, [("grad_norm", grad_norm)])
            ),
        ]
    )


def render(runs: list[str], out: Path, size: tuple[int, int], terminal: bool = False) -> str | None:
    """Write the PNG and return None, or return text charts when `terminal` asks for them."""
    loaded = list(zip(run_labels(runs), (read_metrics(r) for r in runs), strict=True))
    if terminal:
        return text_report(loaded)
    write_png(loaded, out, size)
    log.info("wrote %s", out)
    return None


def parse_size(text: str) -> tuple[int, int]:
    """'1200x800' -> (1200, 800) pixels."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CharRNNError(f"size must look like 1200x800, got {text!r}", "size") from None
    if not (200 <= width <= 10000 and 200 <= height <= 10000):
        raise CharRNNError(f"size must be between 200x200 and 10000x10000 pixels, got {text!r}", "size")
    return width, height
