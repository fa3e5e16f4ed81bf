from __future__ import annotations

import json
import math

import pytest
import torch

from charrnn import checkpoint, trainer
from charrnn.config import DataConfig, TrainConfig
from charrnn.errors import CharRNNError

from .conftest import SMALL_MODEL

KEYS = {"step", "epoch", "chars", "time", "train_loss", "lr", "grad_norm", "clipped", "chars_per_sec"}


def test_loss_falls_and_metrics_are_logged(trained_run):
    records = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert all(set(r) >= KEYS for r in records)
    evals = [r for r in records if "val_loss" in r]
    vocab = checkpoint.load(trained_run / "best.pt").model_config.vocab_size
    assert evals and evals[-1]["val_loss"] < math.log(vocab) - 1.5  # far below a uniform guess
    assert evals[-1]["val_bpc"] == pytest.approx(evals[-1]["val_loss"] / math.log(2), rel=1e-4)
    assert records[0]["train_loss"] > records[-1]["train_loss"]


def _cfg(**kw) -> TrainConfig:
    # fp32: resume is compared bit for bit, and auto would pick bf16 autocast on some CPUs.
    base = dict(batch_size=8, seq_len=16, eval_every=5, log_every=2, warmup_steps=3, min_lr_frac=1.0, seed=3)
    base |= {"precision": "fp32"}
    return TrainConfig(**{**base, **kw})


def test_resume_is_bit_identical(tmp_path, corpus_file):
    data = DataConfig(sources=[str(corpus_file)], cache_dir=str(tmp_path / "cache"))
    model = {**SMALL_MODEL, "dropout": 0.2}  # dropout makes the RNG state matter
    whole = trainer.train(data, model, _cfg(max_steps=14), out=str(tmp_path / "whole"))
    trainer.train(data, model, _cfg(max_steps=8), out=str(tmp_path / "split"))
    resumed = trainer.resume(str(tmp_path / "split"), {"max_steps": 14})
    a = checkpoint.load(tmp_path / "whole" / "last.pt").model
    b = checkpoint.load(tmp_path / "split" / "last.pt").model
    assert all(torch.equal(a[k], b[k]) for k in a)

    def losses(hist):
        return [(r.step, r.train_loss) for r in hist if r.train_loss is not None and r.step > 8]

    assert losses(whole.history) == losses(resumed.history)


def test_resume_refuses_a_changed_corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("to be or not to be, that is the question.\n" * 40)
    data = DataConfig(sources=[str(path)], cache_dir=str(tmp_path / "cache"))
    trainer.train(data, SMALL_MODEL, _cfg(max_steps=2), out=str(tmp_path / "run"))
    path.write_text("to be or not to be, that is the question!\n" * 40)
    with pytest.raises(CharRNNError, match="allow-corpus-change"):
        trainer.resume(str(tmp_path / "run"), {"max_steps": 4})
    assert trainer.resume(str(tmp_path / "run"), {"max_steps": 4}, allow_corpus_change=True).steps == 4


def test_an_existing_run_is_never_overwritten(tmp_path, corpus_file):
    data = DataConfig(sources=[str(corpus_file)], cache_dir=str(tmp_path / "cache"))
    trainer.train(data, SMALL_MODEL, _cfg(max_steps=2), out=str(tmp_path / "run"))
    before = (tmp_path / "run" / "best.pt").read_bytes()
    with pytest.raises(CharRNNError, match="already holds a run"):
        trainer.train(data, SMALL_MODEL, _cfg(max_steps=2), out=str(tmp_path / "run"))
    assert (tmp_path / "run" / "best.pt").read_bytes() == before


def test_non_finite_steps_are_skipped_then_rolled_back(tmp_path, corpus_file, monkeypatch):
    data = DataConfig(sources=[str(corpus_file)], cache_dir=str(tmp_path / "cache"))
    real_step = trainer.Trainer._train_step
    calls = {"n": 0}

    def flaky(self, x, y, hidden, lr, predicted):
        calls["n"] += 1
        if 6 <= calls["n"] < 12:  # six bad steps in a row: more than MAX_BAD_STEPS
            return torch.tensor(math.nan), torch.tensor(math.nan), False
        return real_step(self, x, y, hidden, lr, predicted)

    monkeypatch.setattr(trainer.Trainer, "_train_step", flaky)
    result = trainer.train(data, SMALL_MODEL, _cfg(max_steps=10), out=str(tmp_path / "run"))
    assert result.steps == 10 and math.isfinite(result.best_val_loss)
    ckpt = checkpoint.load(tmp_path / "run" / "last.pt")
    assert ckpt.cursor.rollbacks == 1 and ckpt.cursor.lr_scale == 0.5


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, min_lr_frac=0.1, max_steps=100)
    assert trainer.lr_at(cfg, 0, 0.0) == pytest.approx(0.1)
    assert trainer.lr_at(cfg, 9, 0.09) < 1.0 and trainer.lr_at(cfg, 10, 0.1) > trainer.lr_at(cfg, 50, 0.5)
    assert trainer.lr_at(cfg, 100, 1.0) == pytest.approx(0.1)


def test_new_runs_read_documents_and_older_runs_keep_their_batching(tmp_path, corpus_file, monkeypatch):
    from charrnn.data import BPTTBatches, DocBatches

    made = []
    real = trainer.make_batches
    monkeypatch.setattr(trainer, "make_batches", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    data = DataConfig(sources=[str(corpus_file)], cache_dir=str(tmp_path / "cache"))
    result = trainer.train(data, SMALL_MODEL, _cfg(max_steps=6), out=str(tmp_path / "run"))
    assert isinstance(made[-1], DocBatches) and len(made[-1].seg_start) > 8  # one file: pieces at line starts
    assert checkpoint.load(tmp_path / "run" / "last.pt").model_config.start == "newline"
    evaluated = [r for r in result.history if r.val_loss is not None]
    assert evaluated and all(r.cold_start_loss is not None and r.cold_start_loss > 0 for r in evaluated)
    # The same run as charrnn wrote it before documents (no start in its model config): it resumes with
    # contiguous streams and reads texts as it always did.
    raw = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    del raw["model_config"]["start"]
    torch.save(raw, tmp_path / "run" / "last.pt")
    trainer.resume(str(tmp_path / "run"), {"max_steps": 8})
    assert isinstance(made[-1], BPTTBatches)
    assert checkpoint.load(tmp_path / "run" / "last.pt").model_config.start == "reset"
