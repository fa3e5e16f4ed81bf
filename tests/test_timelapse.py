"""Samples while training: when they are taken, that they leave training alone, that a resumed run
writes the same ones, and how `charrnn timelapse` reads and prints them."""

from __future__ import annotations

import json

import pytest
import torch

from charrnn import checkpoint, timelapse, trainer
from charrnn.config import DataConfig, TrainConfig
from charrnn.errors import CharRNNError
from charrnn.timelapse import SampleRecord

from .conftest import SMALL_MODEL

MODEL = {**SMALL_MODEL, "dropout": 0.2}  # dropout draws from the training's RNG: a sample must not


def _cfg(**kw) -> TrainConfig:
    # fp32: runs are compared bit for bit, and auto would pick bf16 autocast on some CPUs.
    base = dict(batch_size=8, seq_len=16, eval_every=10, log_every=5, warmup_steps=3, seed=5, precision="fp32")
    base["min_lr_frac"] = 1.0  # a flat schedule: a shorter run trains as the start of a longer one
    return TrainConfig(**{**base, "sample_prime": "ROMEO:", "sample_length": 40, **kw})


@pytest.fixture(scope="module")
def data(corpus_file, tmp_path_factory) -> DataConfig:
    return DataConfig(sources=[str(corpus_file)], val_frac=0.02, cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_samples_at_each_evaluation_and_the_end(data, tmp_path):
    trainer.train(data, MODEL, _cfg(max_steps=25), out=str(tmp_path / "run"))
    stages = timelapse.read_samples(tmp_path / "run")
    assert [s.step for s in stages] == [10, 20, 25]
    assert all(s.prime == "ROMEO:" and len(s.text) == 40 and s.val_loss is not None for s in stages)
    assert stages[0].chars < stages[1].chars and stages[0].settings["temperature"] == 0.8
    assert len({s.settings["seed"] for s in stages}) == 3  # another draw at each stage
    metrics = {r["step"]: r for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())}
    assert all(metrics[s.step]["val_loss"] == s.val_loss for s in stages)


def test_sampling_leaves_the_training_alone(data, tmp_path):
    trainer.train(data, MODEL, _cfg(max_steps=12, sample_every=3), out=str(tmp_path / "on"))
    trainer.train(data, MODEL, _cfg(max_steps=12, sample_every=0), out=str(tmp_path / "off"))
    on, off = (checkpoint.load(tmp_path / name / "last.pt") for name in ("on", "off"))
    assert all(torch.equal(on.model[k], off.model[k]) for k in on.model)
    assert torch.equal(on.rng.torch, off.rng.torch)
    assert [s.step for s in timelapse.read_samples(tmp_path / "on")] == [3, 6, 9, 12]
    assert not (tmp_path / "off" / timelapse.SAMPLES_FILE).exists()


def test_a_resumed_run_writes_the_samples_of_a_straight_one(data, tmp_path):
    trainer.train(data, MODEL, _cfg(max_steps=30), out=str(tmp_path / "whole"))
    trainer.train(data, MODEL, _cfg(max_steps=20), out=str(tmp_path / "split"))
    trainer.resume(str(tmp_path / "split"), {"max_steps": 30})
    whole, split = ((tmp_path / name / timelapse.SAMPLES_FILE).read_text() for name in ("whole", "split"))
    assert whole == split and len(whole.splitlines()) == 3


def test_later_records_of_a_resumed_run_replace_the_abandoned_ones(tmp_path):
    lines = [SampleRecord(step, step * 10, "", f"text {step}{tag}").to_json() for step, tag in SEQUENCE]
    (tmp_path / timelapse.SAMPLES_FILE).write_text("\n".join(lines) + "\n")
    stages = timelapse.read_samples(tmp_path)
    assert [(s.step, s.text) for s in stages] == [(10, "text 10"), (20, "text 20b"), (30, "text 30b")]


# A run sampled at 10, 20, 30, crashed, was resumed from a checkpoint of step 15 and sampled 20 and 30 again.
SEQUENCE = [(10, ""), (20, ""), (30, ""), (20, "b"), (30, "b")]


def test_render_heads_each_stage():
    stages = [
        SampleRecord(200, 51_200, "ROMEO:", " the", {"temperature": 0.8}, 1.83, 2.64),
        SampleRecord(250, 64_000, "ROMEO:", " they"),
    ]
    text = timelapse.render(stages)
    assert text.splitlines() == [
        "── step 200 · 51,200 chars seen · val 1.830 nats/token (2.640 bits/char) ──",
        "ROMEO: the",
        "",
        "── step 250 · 64,000 chars seen ──",
        "ROMEO: they",
        "",
    ]
    assert [SampleRecord.from_json(line) for line in timelapse.render_jsonl(stages).splitlines()] == stages


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(CharRNNError, match="no samples.jsonl"):
        timelapse.read_samples(tmp_path)
    (tmp_path / timelapse.SAMPLES_FILE).write_text('{"step": 1}\n')
    with pytest.raises(CharRNNError, match="samples.jsonl:1 is not a sample record"):
        timelapse.read_samples(tmp_path)


def test_sample_settings_are_checked():
    with pytest.raises(CharRNNError, match="sample_every must be 0"):
        TrainConfig(sample_every=-1)
    with pytest.raises(CharRNNError, match="sample_temp"):
        TrainConfig(sample_temp=-0.5)
    assert timelapse.due(TrainConfig(), 7, evaluated=True) and not timelapse.due(TrainConfig(), 8, evaluated=False)
    assert not timelapse.due(TrainConfig(sample_every=0), 10, evaluated=True)
    assert timelapse.due(TrainConfig(sample_every=4), 8, evaluated=False)
