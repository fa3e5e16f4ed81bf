"""TensorBoard event files beside metrics.jsonl, for `charrnn train --tensorboard`."""

from __future__ import annotations

from pathlib import Path

from charrnn.errors import CharRNNError


class TensorBoardLog:
    """Writes a metrics record's scalars (MetricsRecord.scalars) at its step.

    The import is checked at once, so a missing package stops a run before any work; the
    event file is opened at the first record, once the run folder exists.
    """

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise CharRNNError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
        self.run_dir, self.make_writer = run_dir, SummaryWriter
        self.writer = None

    def write(self, step: int, scalars: dict[str, float]) -> None:
        if self.writer is None:
            self.writer = self.make_writer(log_dir=str(self.run_dir))
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
