"""The checkpoint record, its one writer and reader, and finding checkpoints on disk.

On disk a checkpoint is the plain dict `Checkpoint.to_dict()` builds (state_dicts, tensors and
plain data only), so it loads with torch.load(weights_only=True). Its keys are spelled here only.
"""

from __future__ import annotations

import io
import math
import pickle
import random
import re
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from charrnn import tokenizers
from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.errors import CharRNNError
from charrnn.fileio import atomic_write
from charrnn.model import CharRNN

FORMAT_VERSION = 1
CHECKPOINTS = Path("checkpoints")


@dataclass
class Cursor:
    """Where training stands: enough, with the RNG states, to continue exactly."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    chars: int = 0
    elapsed: float = 0.0
    best_val_loss: float = math.inf
    best_val_bpc: float = math.inf
    lr_scale: float = 1.0
    rollbacks: int = 0

    def epochs_done(self, steps_per_epoch: int) -> float:
        return self.epoch + self.step_in_epoch / steps_per_epoch

    def start_window(self, steps_per_epoch: int) -> bool:
        """Past the epoch's last window, move to the next epoch; True when a new one begins."""
        if self.step_in_epoch < steps_per_epoch:
            return False
        self.epoch += 1
        self.step_in_epoch = 0
        return True


@dataclass
class RngState:
    """Python's and torch's generators (and every GPU's), so dropout continues as it would have."""

    python: list[int]
    torch: torch.Tensor
    cuda: list[torch.Tensor] | None = None

    @classmethod
    def capture(cls) -> RngState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return cls(list(random.getstate()[1]), torch.get_rng_state(), cuda)

    def restore(self) -> None:
        random.setstate((3, tuple(self.python), None))
        torch.set_rng_state(self.torch)
        if self.cuda is not None and torch.cuda.is_available() and len(self.cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(self.cuda)


@dataclass
class Checkpoint:
    """A model with what rebuilds it, and for a training run what continues it exactly."""

    model_config: ModelConfig
    tokenizer: dict[str, Any]  # tokenizers.Tokenizer.to_state()
    model: dict[str, torch.Tensor]
    train_config: TrainConfig | None = None
    data_config: DataConfig | None = None
    optimizer: dict[str, Any] | None = None
    scaler: dict[str, Any] = field(default_factory=dict)
    cursor: Cursor | None = None
    state: tuple[torch.Tensor, ...] | None = None  # the carried hidden state of the whole batch
    rng: RngState | None = None
    corpus_sha256: str | None = None
    train_chars: int | None = None
    command: list[str] = field(default_factory=list)
    created: str | None = None
    parent: dict[str, Any] | None = None  # a fine-tuned run's starting point (charrnn.finetune.Parent)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The one writer: the plain dict torch.save stores (absent parts are left out)."""
        out: dict[str, Any] = {"format_version": self.format_version}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "format_version" or value is None:
                continue
            if f.name == "state":
                value = tuple(value)
            elif f.name == "rng":
                value = {k: v for k, v in asdict(value).items() if v is not None}
            elif hasattr(value, "__dataclass_fields__"):
                value = _plain(asdict(value))
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Checkpoint:
        """The one reader; raises KeyError or TypeError where the dict does not fit."""
        typed: dict[str, Any] = {f.name: raw[f.name] for f in fields(cls) if f.name in raw}
        for name, kind in (
            ("model_config", ModelConfig),
            ("train_config", TrainConfig),
            ("data_config", DataConfig),
            ("cursor", Cursor),
            ("rng", RngState),
        ):
            if name in typed:
                typed[name] = kind(**typed[name])
        if "state" in typed:
            typed["state"] = tuple(typed["state"])
        return cls(**typed)


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """Enum members as their values: the file must hold plain data only."""
    return {k: v.value if isinstance(v, Enum) else v for k, v in value.items()}


def save(path: Path, ckpt: Checkpoint) -> None:
    """Serialize to memory first, then write atomically: a failed write never harms the old file."""
    save_all([path], ckpt)


def save_all(paths: list[Path], ckpt: Checkpoint) -> None:
    """The same checkpoint to several files (last.pt, best.pt, a snapshot), serialized once."""
    buffer = io.BytesIO()
    torch.save(ckpt.to_dict(), buffer)
    for path in paths:
        with atomic_write(path) as f:
            f.write(buffer.getbuffer())


def load(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    path = resolve(path)
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" in str(e).lower():  # the file names a function or class: it could run code
            raise CharRNNError(
                f"refusing to load {path}: it holds objects other than tensors and plain data, "
                "which could run code (charrnn loads weights-only checkpoints)"
            ) from None
        raise CharRNNError(f"{path} is not a readable checkpoint: {_first_line(e)}") from None
    except Exception as e:  # truncated or corrupted files fail in many ways inside torch.load
        raise CharRNNError(f"{path} is not a readable checkpoint (truncated or corrupted?): {_first_line(e)}") from None
    if not isinstance(raw, dict) or "format_version" not in raw or "model" not in raw:
        raise CharRNNError(f"{path} is not a charrnn checkpoint")
    if raw["format_version"] > FORMAT_VERSION:
        raise CharRNNError(
            f"{path} has checkpoint format {raw['format_version']}, newer than this charrnn reads "
            f"({FORMAT_VERSION}); upgrade charrnn"
        )
    try:
        return Checkpoint.from_dict(raw)
    except (KeyError, TypeError) as e:
        raise CharRNNError(f"{path} does not match this charrnn's checkpoint format: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def resolve(path: str | Path | None, name: str = "best.pt", step: int | None = None) -> Path:
    """A checkpoint file, a run folder (its `name`, or with `step` its snapshot step-N.pt), or None:
    the latest run under checkpoints/."""
    if step is not None:
        return _snapshot(resolve(path, name).parent if path is None or Path(path).is_dir() else Path(path), step)
    if path is None:
        runs = [p for p in CHECKPOINTS.glob("*/") if (p / name).exists() or (p / "last.pt").exists()]
        if not runs:
            raise CharRNNError(
                "no checkpoint found under checkpoints/; train one first or pass checkpoint", "checkpoint"
            )
        path = max(runs, key=lambda p: max(f.stat().st_mtime for f in p.glob("*.pt")))
    path = Path(path)
    if path.is_dir():
        for candidate in (path / name, path / "last.pt", path / "best.pt"):
            if candidate.exists():
                return candidate
        raise CharRNNError(f"no checkpoint in {path}")
    if not path.exists():
        raise CharRNNError(f"no such checkpoint: {path}")
    return path


def build_model(ckpt: Checkpoint) -> tuple[CharRNN, tokenizers.Tokenizer]:
    """Rebuild the model and tokenizer from a checkpoint alone."""
    try:
        model = CharRNN(ckpt.model_config)
        model.load_state_dict(ckpt.model)
        tokenizer = tokenizers.from_state(ckpt.tokenizer)
    except (KeyError, TypeError, RuntimeError) as e:
        raise CharRNNError(f"checkpoint does not match this charrnn's model: {_first_line(e)}") from None
    return model, tokenizer


# -- snapshots: step-N.pt beside best.pt and last.pt (train --keep-every) ----------------------------

SNAPSHOT = re.compile(r"step-(\d+)\.pt")


def snapshot_name(step: int) -> str:
    return f"step-{step}.pt"


def snapshots(run_dir: Path) -> dict[int, Path]:
    """A run folder's snapshot files by step, oldest first."""
    found = {int(m[1]): p for p in run_dir.glob("step-*.pt") if (m := SNAPSHOT.fullmatch(p.name))}
    return dict(sorted(found.items()))


def prune_snapshots(run_dir: Path, keep_last: int | None) -> None:
    """Delete all but the `keep_last` newest snapshots (None or 0: keep all)."""
    if keep_last:
        for path in list(snapshots(run_dir).values())[:-keep_last]:
            path.unlink(missing_ok=True)


def _snapshot(run_dir: Path, step: int) -> Path:
    if not run_dir.is_dir():
        raise CharRNNError(f"step picks a snapshot of a run folder; {run_dir} is not one", "step", "checkpoint")
    found = snapshots(run_dir)
    if step not in found:
        have = ", ".join(map(str, found)) or "none (train with keep_every N to keep them)"
        raise CharRNNError(
            f"{run_dir} has no snapshot of step {step} ({snapshot_name(step)}); steps kept: {have}", "keep_every"
        )
    return found[step]
