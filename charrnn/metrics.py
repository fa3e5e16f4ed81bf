"""The metrics record of a training run: built once per log interval, then written to metrics.jsonl,
to TensorBoard and to the status line; and read back (plot) from the same record type.

A line of metrics.jsonl is `MetricsRecord.to_json()`; its keys are spelled here only.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Self

from charrnn.errors import CharRNNError
from charrnn.tensorboard_log import TensorBoardLog
from charrnn.ui import TrainProgress

METRICS_FILE = "metrics.jsonl"


class JsonLine:
    """A dataclass that is one line of a run's .jsonl file: one writer, one reader, absent fields left out."""

    ensure_ascii = True  # a class setting, not a field

    def to_json(self) -> str:
        """The line (without its newline)."""
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, ensure_ascii=self.ensure_ascii)

    @classmethod
    def from_json(cls, line: str) -> Self:
        raw = json.loads(line)
        if not isinstance(raw, dict):
            raise ValueError("a record must be a JSON object")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass
class MetricsRecord(JsonLine):
    """One log interval: progress, means over the interval, and the validation result on evaluated steps.

    The interval fields are absent from the record written after the last step when that step was
    not a logged one; the validation fields are present only where the model was evaluated.
    """

    step: int
    epoch: float  # epochs done, fractional
    chars: int  # training characters seen so far
    time: float  # seconds of training so far
    train_loss: float | None = None  # nats per token, mean over the interval
    lr: float | None = None
    grad_norm: float | None = None  # before clipping, mean over the interval
    clipped: float | None = None  # fraction of the interval's steps whose gradient was clipped
    chars_per_sec: float | None = None
    val_loss: float | None = None  # nats per token on the validation split
    val_bpc: float | None = None
    # nats per token over the first 64 characters after document (or line) starts of the validation
    # text, each read from the reset state after a newline: what an unprimed sample begins with
    cold_start_loss: float | None = None

    def scalars(self) -> dict[str, float]:
        """The numeric fields but the step, named as in metrics.jsonl: what TensorBoard plots."""
        return {k: v for k, v in asdict(self).items() if k != "step" and isinstance(v, int | float)}

    def status(self, best_val_loss: float) -> str:
        """The progress line: speed, loss and the latest (or best) validation loss."""
        parts = [f"step {self.step}", f"epoch {self.epoch:.2f}"]
        if self.chars_per_sec is not None:
            parts.append(f"{self.chars_per_sec:,.0f} chars/s")
        if self.train_loss is not None:
            parts.append(f"loss {self.train_loss:.4f}")
        if self.val_loss is not None:
            parts.append(f"val {self.val_loss:.4f} ({self.val_bpc:.3f} bpc)")
        elif math.isfinite(best_val_loss):
            parts.append(f"val {best_val_loss:.4f} best")
        else:
            parts.append("")
        return " | ".join(parts)


def metrics_file(run: str | Path) -> Path:
    """A run folder's metrics.jsonl; a checkpoint in the folder or the file itself also do."""
    path = Path(run)
    if path.suffix == ".pt":
        path = path.parent
    return path if path.suffix == ".jsonl" else path / METRICS_FILE


def read_metrics(run: str | Path) -> list[MetricsRecord]:
    """The one reader: the records of a run's metrics.jsonl, in order."""
    file = metrics_file(run)
    if not file.is_file():
        raise CharRNNError(f"no {METRICS_FILE} in {run}; give a run folder")
    try:
        records = [MetricsRecord.from_json(line) for line in file.read_text().splitlines() if line.strip()]
    except (ValueError, TypeError) as e:
        raise CharRNNError(f"{file} is not valid JSON lines: {e}") from None
    if not records:
        raise CharRNNError(f"{file} holds no records yet")
    return records


class MetricsLogger:
    """Writes each record to metrics.jsonl, to TensorBoard (when asked) and to the status line.

    Only the main process logs (`enabled`); TensorBoard's import is checked here, before any work.
    """

    def __init__(self, run_dir: Path, progress: TrainProgress | None, tensorboard: bool, enabled: bool) -> None:
        self.run_dir, self.enabled = run_dir, enabled
        self.progress = progress if progress is not None and enabled else TrainProgress(enabled=False)
        self.tensorboard = TensorBoardLog(run_dir) if tensorboard and enabled else None
        self.history: list[MetricsRecord] = []

    def write(self, record: MetricsRecord, fraction: float, best_val_loss: float) -> None:
        if not self.enabled:
            return
        self.history.append(record)
        with open(self.run_dir / METRICS_FILE, "a") as f:
            f.write(record.to_json() + "\n")
        if self.tensorboard is not None:
            self.tensorboard.write(record.step, record.scalars())
        self.progress.update(fraction, record.status(best_val_loss))

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
