"""Shared fixtures and helpers: text the tests make themselves, a small trained run, the CLI in a
subprocess, and the rule that CI runs every test (a test may skip only for missing hardware)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charrnn import trainer
from charrnn.config import DataConfig, TrainConfig
from tests import corpora

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "charrnn"]
# Run this checkout's charrnn, whatever is installed.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
SMALL = ["--hidden-size", "64", "--embed-size", "32", "--batch-size", "8", "--seq-len", "32"]
SMALL_MODEL = {"hidden_size": 64, "embed_size": 32, "layers": 2, "dropout": 0.0}
pytest_plugins = ["tests.skip_rule"]

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def restore_charrnn_logger(monkeypatch):
    """In-process CLI calls set up the logger (own handler, no propagation); undo that after
    each test so caplog still sees charrnn's records in the tests that follow."""
    log = logging.getLogger("charrnn")
    monkeypatch.setattr(log, "handlers", list(log.handlers))
    monkeypatch.setattr(log, "level", log.level)
    monkeypatch.setattr(log, "propagate", log.propagate)


def charrnn(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real command in a subprocess, as a user runs it."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def every_command(train_args: list[str], corpus: Path, tmp_path: Path) -> str:
    """Train a run with the real command, then resume, sample, beam-search, eval and gradflow it,
    checking what a user would check; returns the run folder (for a cell's own checks)."""
    run = str(tmp_path / "run")
    trained = charrnn("train", str(corpus), *train_args, "--out", run, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert losses[-1] < losses[0] - 0.3  # a few tiny steps: down to about the unigram entropy
    resumed = charrnn("train", "--resume", run, "--max-steps", "50", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    sampled = charrnn("sample", "-c", run, "--length", "200", "--seed", "1", "--prime", "ROMEO:", cwd=tmp_path)
    assert sampled.returncode == 0 and len(sampled.stdout) == len("ROMEO:") + 200, sampled.stderr
    beam = charrnn("sample", "-c", run, "--beam", "4", "--length", "60", cwd=tmp_path)
    assert beam.returncode == 0 and len(beam.stdout) == 60, beam.stderr
    evaluated = charrnn("eval", str(corpus), "-c", run, "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert 1.0 < json.loads(evaluated.stdout)["bits_per_char"] < 5.0
    flow = charrnn("gradflow", run, "--seq-len", "20", "--batches", "1", "--batch-size", "4", cwd=tmp_path)
    assert flow.returncode == 0 and "horizon" in flow.stdout, flow.stderr
    return run


def train_in_one_and_two_processes(tmp_path: Path, args: list[str]) -> tuple[dict, dict]:
    """Train the same run in one process (into tmp_path/one) and in two (tmp_path/two); check that
    the two end with the same weights and return both last.pt checkpoints. fp32, so that the
    comparison means the same on every CPU (auto picks bf16 autocast where the CPU has it)."""
    args = [*args, "--precision", "fp32"]
    single = charrnn("train", *args, "--out", str(tmp_path / "one"), cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    multi = charrnn("train", *args, "--out", str(tmp_path / "two"), "--nproc", "2", cwd=tmp_path)
    assert multi.returncode == 0, multi.stderr[-2000:]
    one = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    for name, weight in one["model"].items():
        torch.testing.assert_close(two["model"][name], weight, rtol=1e-3, atol=1e-4)
    return one, two


@pytest.fixture(scope="session")
def play_text() -> str:
    """300,000 characters of a generated stage play (tests/corpora.py)."""
    return corpora.play(300_000)


@pytest.fixture(scope="session")
def corpus_file(play_text: str, tmp_path_factory) -> Path:
    """The first 100,000 characters of the play as a file: quick to train on."""
    path = tmp_path_factory.mktemp("corpus") / "play.txt"
    path.write_text(play_text[:100_000], encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def chinese_file(tmp_path_factory) -> Path:
    """40,000 characters of generated Chinese, with more distinct characters than a small vocabulary holds."""
    path = tmp_path_factory.mktemp("corpus") / "chinese.txt"
    path.write_text(corpora.han_lines(40_000), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained_run(corpus_file: Path, tmp_path_factory) -> Path:
    """A small LSTM trained briefly on the play; its run folder. fp32: tests compare its numbers."""
    root = tmp_path_factory.mktemp("run")
    trainer.train(
        DataConfig(sources=[str(corpus_file)], cache_dir=str(root / "cache")),
        SMALL_MODEL,
        TrainConfig(
            max_steps=200, eval_every=100, batch_size=16, seq_len=32, warmup_steps=10, lr=1e-2, precision="fp32"
        ),
        out=str(root / "run"),
        command=["charrnn", "train", str(corpus_file)],  # as the CLI records it
    )
    return root / "run"
