"""What a checkpoint holds: model, tokenizer, corpus, progress and the command that made it."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

from rich.table import Table

from charrnn import checkpoint
from charrnn.config import ModelConfig
from charrnn.errors import CharRNNError
from charrnn.metrics import read_metrics
from charrnn.model import num_parameters
from charrnn.registry import CELL_INFO

UNKNOWN = "?"


def _model_line(m: ModelConfig) -> str:
    extras = [f"embedding {m.embed_size}", f"dropout {m.dropout:g}"]
    if m.tie_weights:
        extras.append("tied weights")
    if CELL_INFO[m.cell].forget_gate and m.forget_bias:
        extras.append(f"forget bias {m.forget_bias:g}")
    return f"{m.cell} {m.layers}x{m.hidden_size} ({', '.join(extras)})"


def _loss(nats: float, bpc: float) -> str:
    if not math.isfinite(nats):
        return "not evaluated yet"
    return f"{nats:.4f} nats/token ({bpc:.3f} bits/char)"


def describe(path: str | Path) -> tuple[Path, list[tuple[str, str]]]:
    """The resolved checkpoint file and its (field, value) rows."""
    file = checkpoint.resolve(path)
    ckpt = checkpoint.load(file)
    model, tokenizer = checkpoint.build_model(ckpt)
    t, d, cursor = ckpt.train_config, ckpt.data_config, ckpt.cursor
    rows = [
        ("checkpoint", str(file)),
        ("created", ckpt.created or UNKNOWN),
        ("model", _model_line(ckpt.model_config)),
        ("parameters", f"{num_parameters(model):,}"),
        ("tokenizer", f"{tokenizer.kind}, vocabulary {tokenizer.vocab_size:,}"),
        ("corpus", ", ".join(d.sources) if d is not None else UNKNOWN),
        ("corpus sha256", ckpt.corpus_sha256 or UNKNOWN),
        ("training characters", f"{ckpt.train_chars:,}" if ckpt.train_chars is not None else UNKNOWN),
    ]
    if t is not None:
        rows.append(("training", f"batch {t.batch_size} x seq-len {t.seq_len}, lr {t.lr:g}"))
    if cursor is not None:
        rows += [
            ("steps", f"{cursor.step:,} (epoch {cursor.epoch})"),
            ("characters seen", f"{cursor.chars:,}"),
            ("training time", f"{cursor.elapsed:,.0f} s"),
            ("best val loss", _loss(cursor.best_val_loss, cursor.best_val_bpc)),
            ("cold-start loss", _cold_start(file.parent, cursor.step)),
        ]
    rows.append(("reads texts", START_WORDS[ckpt.model_config.start]))
    if ckpt.parent:
        rows.append(("fine-tuned from", f"{ckpt.parent['checkpoint']} (step {ckpt.parent['step']})"))
    if ckpt.command:
        rows.append(("command", shlex.join(ckpt.command)))
    return file, rows + snapshot_rows(file.parent)


START_WORDS = {
    "newline": "from the reset state after a newline, as it was trained on each document",
    "reset": "from the reset state, the first token unpredicted (trained before documents)",
}


def _cold_start(run_dir: Path, step: int) -> str:
    """The cold-start loss recorded at the checkpoint's step (metrics.jsonl), in words."""
    try:
        found = [r for r in read_metrics(run_dir) if r.step == step and r.cold_start_loss is not None]
    except CharRNNError:
        found = []
    if not found:
        return "not recorded"
    return f"{found[-1].cold_start_loss:.4f} nats/token over the first 64 characters of a document"


def snapshot_rows(run_dir: Path) -> list[tuple[str, str]]:
    """A row per snapshot (step-N.pt) of the run: its step and validation loss, read from metrics.jsonl
    rather than from each checkpoint."""
    found = checkpoint.snapshots(run_dir)
    if not found:
        return []
    try:
        evaluated = {r.step: r for r in read_metrics(run_dir) if r.val_loss is not None}  # a resumed step: the last
    except CharRNNError:
        evaluated = {}
    rows = []
    for step, path in found.items():
        r = evaluated.get(step)
        val = _loss(r.val_loss, r.val_bpc if r.val_bpc is not None else math.nan) if r else "not recorded"
        rows.append((f"snapshot {path.name}", f"step {step:,}, val loss {val}"))
    return rows


def table(path: str | Path) -> Table:
    file, rows = describe(path)
    out = Table(title=str(file), show_header=False, title_justify="left")
    out.add_column(style="bold")
    out.add_column(overflow="fold")
    for name, value in rows:
        out.add_row(name, value)
    return out
