"""The commands that look inside training, run as a user runs them: in a subprocess (their second cases
in-process, through the same entry point)."""

from __future__ import annotations

import json
import subprocess

import pytest

from charrnn import checkpoint
from charrnn.evaluate import evaluate_text

from .conftest import CLI, SMALL, charrnn, charrnn_here, png_size


def _one_error_line(result: subprocess.CompletedProcess, pattern: str) -> None:
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charrnn: error:") and pattern in lines[0], result.stderr


def test_help_of_the_new_commands_does_not_import_torch(tmp_path):
    for command in ("plot", "eval", "info", "novelty", "gradflow"):
        result = subprocess.run(
            [*CLI[:1], "-X", "importtime", "-m", "charrnn", command, "--help"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert result.returncode == 0 and "Usage" in result.stdout
        assert " torch" not in result.stderr, command


def test_info(trained_run, tmp_path):
    result = charrnn("info", str(trained_run), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for field in ("parameters", "lstm 2x64", "char, vocabulary", "corpus sha256", "best val loss", "command"):
        assert field in result.stdout
    _one_error_line(charrnn_here("info", str(tmp_path / "nowhere"), cwd=tmp_path), "no such checkpoint")


def test_eval_a_file_and_stdin(trained_run, corpus_file, tmp_path):
    text = corpus_file.read_text()[-20_000:]
    (tmp_path / "held_out.txt").write_text(text)
    result = charrnn("eval", str(tmp_path / "held_out.txt"), "-c", str(trained_run), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    model, tok = checkpoint.build_model(checkpoint.load(trained_run / "best.pt"))
    expected = evaluate_text(model, tok, [text])
    assert measured["tokens"] == expected.tokens == 20_000  # read after a newline: every token predicted
    assert measured["cold_start_loss"] > 0
    assert measured["bits_per_char"] == pytest.approx(expected.bits_per_char, rel=1e-5)
    piped = charrnn_here("eval", "-", "-c", str(trained_run), cwd=tmp_path, stdin=text)
    assert piped.returncode == 0 and f"bits/char   {expected.bits_per_char:.4f}" in piped.stdout
    strict = charrnn_here(
        "eval", "-", "-c", str(trained_run), "--unknown", "error", cwd=tmp_path, stdin="日本 and more"
    )
    _one_error_line(strict, "not in the model's vocabulary")


def test_plot_two_runs_to_png_and_to_the_terminal(trained_run, tmp_path):
    out = tmp_path / "two.png"
    result = charrnn(
        "plot", str(trained_run), str(trained_run / "metrics.jsonl"), "-o", str(out), "--size", "800x500", cwd=tmp_path
    )
    assert result.returncode == 0 and result.stdout == "", result.stderr
    assert png_size(out) == (800, 500)
    text = charrnn_here("plot", str(trained_run), "--terminal", cwd=tmp_path)
    assert text.returncode == 0 and "loss (nats/token) against wall time" in text.stdout
    _one_error_line(charrnn_here("plot", str(tmp_path), cwd=tmp_path), "no metrics.jsonl")


def test_plot_without_matplotlib_fails_instead_of_writing_no_file(trained_run, tmp_path):
    out = tmp_path / "curves.png"
    hide = "import sys; sys.modules['matplotlib'] = None; from charrnn.cli import main; sys.argv[0] = 'charrnn'; main()"
    result = subprocess.run(
        [*CLI[:1], "-c", hide, "plot", str(trained_run), "-o", str(out)], capture_output=True, text=True, cwd=tmp_path
    )
    _one_error_line(result, "needs matplotlib")
    assert not out.exists()


def test_novelty_reads_the_sample_from_stdin(corpus_file, tmp_path):
    sample = corpus_file.read_text()[1000:1300] + "Qqzx vbnm wert!"
    result = charrnn("novelty", "-", "--corpus", str(corpus_file), "--json", cwd=tmp_path, stdin=sample)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["longest_copied"] >= 300 and record["novel_fraction"]["50"] > 0
    _one_error_line(charrnn_here("novelty", "-", "--corpus", "-", cwd=tmp_path, stdin="x"), "--corpus")


def test_gradflow_of_a_checkpoint_with_a_plot(trained_run, corpus_file, tmp_path):
    out = tmp_path / "g.png"
    args = ["gradflow", str(trained_run), "--corpus", str(corpus_file), "--seq-len", "25", "--batches", "1"]
    result = charrnn(*args, "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "horizon" in result.stdout and png_size(out) == (600, 420)
    _one_error_line(charrnn_here("gradflow", cwd=tmp_path), "give checkpoints")
    _one_error_line(charrnn_here("gradflow", "--compare", cwd=tmp_path), "--corpus")


def test_tensorboard_flag(corpus_file, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(corpus_file), *SMALL, "--max-steps", "4", "--log-every", "2", "--tensorboard"]
    result = charrnn(*args, "--out", str(run), "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path)
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        _one_error_line(result, "--tensorboard needs the tensorboard package")
        return
    assert result.returncode == 0, result.stderr
    assert list(run.glob("events.out.tfevents.*"))
