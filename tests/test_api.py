"""The Python API (charrnn/api.py): train, load, generate and stream, as a notebook would."""

from __future__ import annotations

import subprocess
import sys

import pytest

import charrnn
from charrnn.errors import CharRNNError

from .conftest import charrnn as run_cli

SETTINGS = {"hidden_size": 48, "embed_size": 16, "batch_size": 8, "seq_len": 32, "dropout": 0.0, "lr": 1e-2}


@pytest.fixture(scope="module")
def run(corpus_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    cache = str(root / "cache")
    return charrnn.train(
        corpus_file, out=root / "run", max_steps=60, eval_every=60, warmup_steps=5, cache_dir=cache, **SETTINGS
    )


def test_import_charrnn_imports_no_torch():
    code = "import sys, charrnn; assert 'torch' not in sys.modules; charrnn.load; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_train_returns_the_run(run):
    assert (
        run.steps == 60 and (run.run_dir / "best.pt").exists() and run.best_val_loss < 3.3
    )  # below a uniform guess over ~56 characters (4.0)


def test_generate_equals_the_command(run, tmp_path):
    model = charrnn.load(run.run_dir)
    text = model.generate(prime="ROMEO:", length=80, seed=3, temperature=0.8)
    cli = run_cli(
        "sample", "-c", str(run.run_dir), "-p", "ROMEO:", "-n", "80", "--seed", "3", "-t", "0.8", cwd=tmp_path
    )
    assert cli.returncode == 0 and cli.stdout == "ROMEO:" + text and len(text) == 80


def test_stream_yields_the_same_text_in_pieces(run):
    model = charrnn.load(run.run_dir)
    pieces = list(model.stream(length=300, seed=5, min_p=0.05))
    assert len(pieces) > 1 and "".join(pieces) == model.generate(length=300, seed=5, min_p=0.05)


def test_samples_beam_and_info(run):
    model = charrnn.load(run.run_dir, device="cpu")
    two = model.samples(length=20, num_samples=2, seed=1)
    assert len(two) == 2 and all(s.logprob < 0 and len(s.text) == 20 for s in two)
    best = model.samples(length=20, beam=4, n_best=3)
    assert len(best) == 3 and len({s.text for s in best}) == 3  # three different hypotheses
    assert model.info["model"].startswith("lstm 2x48") and "nats/token" in model.info["best val loss"]


def test_unknown_settings_and_bad_values_are_named(run, corpus_file):
    with pytest.raises(CharRNNError, match="unknown setting 'temp'"):
        charrnn.load(run.run_dir).generate(temp=0.5)
    with pytest.raises(CharRNNError, match="top_p"):
        charrnn.load(run.run_dir).generate(top_p=2.0)
    with pytest.raises(CharRNNError, match="unknown setting 'hidden'"):
        charrnn.train(corpus_file, hidden=12)


def test_a_duration_is_read_by_its_field_s_parser():
    from charrnn.api import _split
    from charrnn.config import TrainConfig

    assert _split({"time_budget": "1h30m", "max_steps": 5}, TrainConfig) == [{"time_budget": 5400.0, "max_steps": 5}]
