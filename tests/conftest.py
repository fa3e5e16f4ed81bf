"""Shared fixtures: real corpora from ../shared (skipped when absent) and a small trained run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from charrnn import train
from charrnn.config import DataConfig, TrainConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
SMALL_MODEL = {"hidden_size": 64, "embed_size": 32, "layers": 2, "dropout": 0.0}

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def restore_charrnn_logger(monkeypatch):
    """In-process CLI calls set up the logger (own handler, no propagation); undo that after
    each test so caplog still sees charrnn's records in the tests that follow."""
    log = logging.getLogger("charrnn")
    monkeypatch.setattr(log, "handlers", list(log.handlers))
    monkeypatch.setattr(log, "level", log.level)
    monkeypatch.setattr(log, "propagate", log.propagate)


def corpus(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared corpora sit beside the project)")
    return path


@pytest.fixture(scope="session")
def shakespeare() -> Path:
    return corpus("tinyshakespeare.txt")


@pytest.fixture(scope="session")
def shakespeare_head(shakespeare: Path, tmp_path_factory) -> Path:
    """The first 100,000 characters of Tiny Shakespeare: real text, quick to train on."""
    path = tmp_path_factory.mktemp("corpus") / "shakespeare_head.txt"
    path.write_text(shakespeare.read_text(encoding="utf-8")[:100_000], encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained_run(shakespeare_head: Path, tmp_path_factory) -> Path:
    """A small LSTM trained briefly on real text; its run folder."""
    root = tmp_path_factory.mktemp("run")
    train.train(
        DataConfig(sources=[str(shakespeare_head)], cache_dir=str(root / "cache")),
        SMALL_MODEL,
        TrainConfig(max_steps=200, eval_every=100, batch_size=16, seq_len=32, warmup_steps=10, lr=1e-2),
        out=str(root / "run"),
        command=["charrnn", "train", str(shakespeare_head)],  # as the CLI records it
    )
    return root / "run"
