"""Shared fixtures and helpers: text the tests make themselves, a small trained run, the CLI in a
subprocess, and the rule that CI runs every test (a test may skip only for missing hardware)."""

from __future__ import annotations

import contextlib
import io
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

# One intra-op thread, here and in every command the tests start: the tests' tiny models gain nothing
# from a second thread, and on busy shared cores OpenMP's spinning threads made them many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def restore_charrnn_logger(monkeypatch):
    """In-process CLI calls set up the logger (own handler, no propagation); undo that after
    each test so caplog still sees charrnn's records in the tests that follow."""
    log = logging.getLogger("charrnn")
    monkeypatch.setattr(log, "handlers", list(log.handlers))
    monkeypatch.setattr(log, "level", log.level)
    monkeypatch.setattr(log, "propagate", log.propagate)


def charrnn(
    *args: str, cwd: Path, stdin: str | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The real command in a subprocess, as a user runs it."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env=env,
    )


def charrnn_here(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The command run in this process through the CLI's entry point (charrnn.cli.main: the same
    parsing and the same translation of errors into one line and an exit status), without paying a
    new interpreter's start-up; the result reads like charrnn()'s. For the cases where what is
    checked is the command's behaviour, not the process around it (pipes, signals, start-up)."""
    from charrnn import cli

    out, err = io.BytesIO(), io.BytesIO()
    streams = (
        io.TextIOWrapper(io.BytesIO((stdin or "").encode()), encoding="utf-8"),  # a real stdin has a byte buffer
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True),
    )
    saved = sys.argv, sys.stdin, sys.stdout, sys.stderr
    sys.argv, (sys.stdin, sys.stdout, sys.stderr) = ["charrnn", *args], streams
    try:
        with contextlib.chdir(cwd):
            try:
                cli.main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
    finally:
        sys.argv, sys.stdin, sys.stdout, sys.stderr = saved

    def text(data: io.BytesIO) -> str:  # decoded as subprocess.run(text=True) decodes: universal newlines
        return data.getvalue().decode("utf-8", "backslashreplace").replace("\r\n", "\n").replace("\r", "\n")

    return subprocess.CompletedProcess(["charrnn", *args], code, text(out), text(err))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def every_command(train_args: list[str], corpus: Path, tmp_path: Path) -> str:
    """Train a run with the real command in a subprocess, then resume, sample, beam-search, eval and
    gradflow it in this process (charrnn_here), checking what a user would check; returns the run
    folder (for a cell's own checks). `corpus` is best short: eval reads all of it."""
    run = str(tmp_path / "run")
    trained = charrnn("train", str(corpus), *train_args, "--out", run, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert losses[-1] < losses[0] - 0.3  # a few tiny steps: down to about the unigram entropy
    resumed = charrnn_here("train", "--resume", run, "--max-steps", "50", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    sampled = charrnn_here("sample", "-c", run, "--length", "200", "--seed", "1", "--prime", "ROMEO:", cwd=tmp_path)
    assert sampled.returncode == 0 and len(sampled.stdout) == len("ROMEO:") + 200, sampled.stderr
    beam = charrnn_here("sample", "-c", run, "--beam", "4", "--length", "60", cwd=tmp_path)
    assert beam.returncode == 0 and len(beam.stdout) == 60, beam.stderr
    evaluated = charrnn_here("eval", str(corpus), "-c", run, "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert 1.0 < json.loads(evaluated.stdout)["bits_per_char"] < 5.0
    flow = charrnn_here("gradflow", run, "--seq-len", "20", "--batches", "1", "--batch-size", "4", cwd=tmp_path)
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
def short_corpus_file(play_text: str, tmp_path_factory) -> Path:
    """The first 20,000 characters of the play: for runs that evaluate or read the whole corpus."""
    path = tmp_path_factory.mktemp("corpus") / "short-play.txt"
    path.write_text(play_text[:20_000], encoding="utf-8")
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
