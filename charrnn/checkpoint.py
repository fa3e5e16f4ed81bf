"""Save, find and load checkpoints: plain data and tensors only, loadable with weights_only=True."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from charrnn import tokenizers
from charrnn.config import ModelConfig
from charrnn.errors import CharRNNError
from charrnn.fileio import atomic_write
from charrnn.model import CharRNN

FORMAT_VERSION = 1
CHECKPOINTS = Path("checkpoints")


def save(path: Path, ckpt: dict[str, Any]) -> None:
    """Serialize to memory first, then write atomically: a failed write never harms the old file."""
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **ckpt}, buffer)
    with atomic_write(path) as f:
        f.write(buffer.getbuffer())


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = resolve(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" in str(e).lower():  # the file names a function or class: it could run code
            raise CharRNNError(
                f"refusing to load {path}: it holds objects other than tensors and plain data, "
                "which could run code (charrnn loads weights-only checkpoints)"
            ) from None
        detail = (str(e).splitlines() or [type(e).__name__])[0]
        raise CharRNNError(f"{path} is not a readable checkpoint: {detail}") from None
    except Exception as e:  # truncated or corrupted files fail in many ways inside torch.load
        detail = (str(e).splitlines() or [type(e).__name__])[0]
        raise CharRNNError(f"{path} is not a readable checkpoint (truncated or corrupted?): {detail}") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt or "model" not in ckpt:
        raise CharRNNError(f"{path} is not a charrnn checkpoint")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CharRNNError(
            f"{path} has checkpoint format {ckpt['format_version']}, newer than this charrnn reads "
            f"({FORMAT_VERSION}); upgrade charrnn"
        )
    return ckpt


def resolve(path: str | Path | None, name: str = "best.pt") -> Path:
    """A checkpoint file, a run folder (its `name`), or None: the latest run under checkpoints/."""
    if path is None:
        runs = [p for p in CHECKPOINTS.glob("*/") if (p / name).exists() or (p / "last.pt").exists()]
        if not runs:
            raise CharRNNError("no checkpoint found under checkpoints/; train one first or pass --checkpoint")
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


def build_model(ckpt: dict[str, Any]) -> tuple[CharRNN, tokenizers.Tokenizer]:
    """Rebuild the model and tokenizer from a checkpoint alone."""
    try:
        model = CharRNN(ModelConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        tokenizer = tokenizers.from_state(ckpt["tokenizer"])
    except (KeyError, TypeError, RuntimeError) as e:
        detail = (str(e).splitlines() or [type(e).__name__])[0]
        raise CharRNNError(f"checkpoint does not match this charrnn's model: {detail}") from None
    return model, tokenizer
