from __future__ import annotations

import hashlib
import os
import pickle
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from charrnn import checkpoint, info, trainer
from charrnn.checkpoint import Cursor
from charrnn.config import SampleConfig
from charrnn.errors import CharRNNError
from charrnn.sample import generate


def test_run_folder_holds_loadable_checkpoints(trained_run):
    for name in ("best.pt", "last.pt"):
        raw = torch.load(trained_run / name, weights_only=True)  # plain data and tensors only
        assert set(raw) == A0CD22A_KEYS and raw["format_version"] == checkpoint.FORMAT_VERSION
        assert set(raw["cursor"]) == set(A0CD22A_CURSOR) and set(raw["rng"]) == {"python", "torch"}
        ckpt = checkpoint.load(trained_run / name)
        assert ckpt.to_dict().keys() == raw.keys() and ckpt.cursor.step == raw["cursor"]["step"]
    assert checkpoint.resolve(trained_run).name == "best.pt"


# The layout of a checkpoint as charrnn a0cd22a wrote it, spelled out here rather than taken from
# today's writer, so that a change of the writer cannot hide a change of the format.
A0CD22A_KEYS = {
    "format_version",
    "model_config",
    "train_config",
    "data_config",
    "tokenizer",
    "model",
    "optimizer",
    "scaler",
    "cursor",
    "state",
    "rng",
    "corpus_sha256",
    "train_chars",
    "command",
    "created",
}
A0CD22A_CURSOR = {
    "step": 3,
    "epoch": 0,
    "step_in_epoch": 3,
    "chars": 192,
    "elapsed": 1.5,
    "best_val_loss": 2.5,
    "best_val_bpc": 3.6,
    "lr_scale": 1.0,
    "rollbacks": 0,
}


def write_a0cd22a_checkpoint(path: Path, corpus: Path, cache: Path) -> None:
    """A two-layer 32-unit LSTM run after 3 steps, as a0cd22a's Trainer._checkpoint built it."""
    text = corpus.read_text()
    chars = "".join(sorted(set(text)))
    vocab, hidden, embed, layers, batch = len(chars), 32, 16, 2, 4
    torch.manual_seed(0)
    shapes = {"embed.weight": (vocab, embed)}
    for layer in range(layers):
        shapes |= {
            f"rnn.weight_ih_l{layer}": (4 * hidden, embed if layer == 0 else hidden),
            f"rnn.weight_hh_l{layer}": (4 * hidden, hidden),
            f"rnn.bias_ih_l{layer}": (4 * hidden,),
            f"rnn.bias_hh_l{layer}": (4 * hidden,),
        }
    shapes |= {"head.weight": (vocab, hidden), "head.bias": (vocab,)}
    weights = {name: torch.randn(shape) * 0.1 for name, shape in shapes.items()}
    params = [torch.nn.Parameter(w.clone()) for w in weights.values()]
    decay = [p for name, p in zip(weights, params, strict=True) if p.dim() >= 2 and "embed" not in name]
    no_decay = [p for p in params if all(p is not q for q in decay)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=3e-3, betas=(0.9, 0.99)
    )
    sum(p.sum() for p in params).backward()
    optimizer.step()
    train_config = {
        "batch_size": batch,
        "seq_len": 16,
        "lr": 3e-3,
        "min_lr_frac": 0.1,
        "warmup_steps": 2,
        "weight_decay": 0.01,
        "grad_clip": 1.0,
        "max_steps": 3,
        "epochs": None,
        "time_budget": None,
        "eval_every": 5,
        "save_every": None,
        "log_every": 1,
        "seed": 1337,
        "device": "cpu",
        "precision": "fp32",
        "compile": False,
        "tensorboard": False,
    }
    data_config = {
        "sources": [str(corpus)],
        "val_file": None,
        "val_frac": 0.1,
        "tokenizer": "char",
        "vocab_size": 2000,
        "encoding_errors": "strict",
        "cache_dir": str(cache),
    }
    model_config = {
        "vocab_size": vocab,
        "cell": "lstm",
        "hidden_size": hidden,
        "embed_size": embed,
        "layers": layers,
        "dropout": 0.1,
        "tie_weights": False,
        "forget_bias": 0.0,
    }
    ckpt = {
        "format_version": 1,
        "model_config": model_config,
        "train_config": train_config,
        "data_config": data_config,
        "tokenizer": {"kind": "char", "chars": chars},
        "model": weights,
        "optimizer": optimizer.state_dict(),
        "scaler": {},
        "cursor": dict(A0CD22A_CURSOR),
        "state": (torch.zeros(layers, batch, hidden), torch.zeros(layers, batch, hidden)),
        "rng": {"python": list(random.getstate()[1]), "torch": torch.get_rng_state()},
        "corpus_sha256": hashlib.sha256(corpus.read_bytes()).hexdigest(),
        "train_chars": len(text) - int(len(text) * 0.1),
        "command": ["charrnn", "train", str(corpus)],
        "created": "2026-11-20T12:00:00",
    }
    assert set(ckpt) == A0CD22A_KEYS
    torch.save(ckpt, path)


def test_a_checkpoint_written_by_a0cd22a_loads_samples_and_resumes(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question; whether 'tis nobler in the mind.\n" * 60)
    run = tmp_path / "run"
    run.mkdir()
    write_a0cd22a_checkpoint(run / "last.pt", corpus, tmp_path / "cache")
    torch.load(run / "last.pt", weights_only=True)

    ckpt = checkpoint.load(run / "last.pt")
    assert ckpt.cursor == Cursor(**A0CD22A_CURSOR) and ckpt.train_config.max_steps == 3
    model, tok = checkpoint.build_model(ckpt)
    assert torch.equal(model.state_dict()["head.bias"], ckpt.model["head.bias"])
    text = generate(model, tok, SampleConfig(length=30, seed=1, prime="to "))[0].text
    assert len(text) == 30 and set(text) <= set(corpus.read_text())
    assert dict(info.describe(run)[1])["steps"].startswith("3 ")

    result = trainer.resume(str(run), {"max_steps": 6}, progress=None, command=["test"])
    assert result.steps == 6
    resumed = checkpoint.load(run / "last.pt")
    assert resumed.cursor.step == 6 and resumed.command == ["test"]
    assert resumed.corpus_sha256 == ckpt.corpus_sha256
    assert set(torch.load(run / "last.pt", weights_only=True)) == A0CD22A_KEYS  # still the same layout


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
    raw = torch.load(trained_run / "best.pt", weights_only=True)
    raw["format_version"] = checkpoint.FORMAT_VERSION + 1
    torch.save(raw, tmp_path / "newer.pt")
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
    ckpt = checkpoint.load(trained_run / "best.pt")
    checkpoint.save(path, ckpt)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(CharRNNError, match="no space left"):
        checkpoint.save(path, replace(ckpt, created="later"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_missing_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CharRNNError, match="no checkpoint found"):
        checkpoint.resolve(None)
    with pytest.raises(CharRNNError, match="no such checkpoint"):
        checkpoint.resolve(tmp_path / "x.pt")


def test_snapshots_are_found_pruned_and_resolved_by_step(tmp_path, monkeypatch):
    for name in ("best.pt", "last.pt", "step-100.pt", "step-20.pt", "step-40.pt", "step-x.pt", ".step-60.pt.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert list(checkpoint.snapshots(tmp_path)) == [20, 40, 100]  # by step, not by name
    assert checkpoint.resolve(tmp_path, step=40) == tmp_path / "step-40.pt"
    with pytest.raises(CharRNNError, match=r"no snapshot of step 60 \(step-60.pt\); steps kept: 20, 40, 100$"):
        checkpoint.resolve(tmp_path, step=60)
    with pytest.raises(CharRNNError, match="step picks a snapshot of a run folder"):
        checkpoint.resolve(tmp_path / "best.pt", step=40)
    checkpoint.prune_snapshots(tmp_path, None)
    assert list(checkpoint.snapshots(tmp_path)) == [20, 40, 100]
    checkpoint.prune_snapshots(tmp_path, 2)
    assert list(checkpoint.snapshots(tmp_path)) == [40, 100] and (tmp_path / "best.pt").exists()
    monkeypatch.chdir(tmp_path.parent)
    monkeypatch.setattr(checkpoint, "CHECKPOINTS", tmp_path.parent)  # the latest run, then its snapshot
    assert checkpoint.resolve(None, step=100) == tmp_path / "step-100.pt"
