from __future__ import annotations

import os
import pickle

import pytest
import torch

from charrnn import checkpoint
from charrnn.config import SampleConfig
from charrnn.errors import CharRNNError
from charrnn.sample import generate


def test_run_folder_holds_loadable_checkpoints(trained_run):
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(trained_run / name, weights_only=True)  # plain data and tensors only
        assert ckpt["format_version"] == checkpoint.FORMAT_VERSION
        assert {"model", "optimizer", "model_config", "train_config", "tokenizer", "cursor", "rng"} <= set(ckpt)
    assert checkpoint.resolve(trained_run).name == "best.pt"


def test_reloaded_model_samples_the_same_text(trained_run):
    model, tok = checkpoint.build_model(checkpoint.load(trained_run / "best.pt"))
    again, _ = checkpoint.build_model(checkpoint.load(trained_run / "best.pt"))
    cfg = SampleConfig(length=200, seed=7, temperature=0.8)
    assert generate(model, tok, cfg)[0].text == generate(again, tok, cfg)[0].text


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/charrnn-pwned",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "model": Exploit()}, path)
    with pytest.raises(CharRNNError, match="refusing to load"):
        checkpoint.load(path)
    assert not os.path.exists("/tmp/charrnn-pwned")


def test_corrupt_truncated_foreign_and_newer_files(tmp_path, trained_run):
    data = (trained_run / "best.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("hello")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    ckpt = checkpoint.load(trained_run / "best.pt")
    ckpt["format_version"] = checkpoint.FORMAT_VERSION + 1
    torch.save(ckpt, tmp_path / "newer.pt")
    (tmp_path / "pickle.pt").write_bytes(pickle.dumps({"a": 1}))
    for name, message in [
        ("trunc", "not a readable"),
        ("text", "not a readable"),
        ("foreign", "not a charrnn"),
        ("newer", "upgrade charrnn"),
        ("pickle", "not a"),
    ]:
        with pytest.raises(CharRNNError, match=message):
            checkpoint.load(tmp_path / f"{name}.pt")


def test_save_is_atomic_on_failure(tmp_path, monkeypatch, trained_run):
    path = tmp_path / "last.pt"
    checkpoint.save(path, {"model": {}, "step": 1})
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(CharRNNError, match="no space left"):
        checkpoint.save(path, {"model": {}, "step": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_missing_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CharRNNError, match="no checkpoint found"):
        checkpoint.resolve(None)
    with pytest.raises(CharRNNError, match="no such checkpoint"):
        checkpoint.resolve(tmp_path / "x.pt")
