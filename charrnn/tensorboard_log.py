"""TensorBoard event files beside metrics.jsonl, for `charrnn train --tensorboard`."""

from __future__ import annotations

from pathlib import Path

from charrnn.errors import CharRNNError


class TensorBoardLog:
    """Writes every numeric field of a metrics record as a scalar at its step."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise CharRNNError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
        self.writer = SummaryWriter(log_dir=str(run_dir))

    def write(self, record: dict) -> None:
        for key, value in record.items():
            if key != "step" and isinstance(value, int | float):
                self.writer.add_scalar(key, value, record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
