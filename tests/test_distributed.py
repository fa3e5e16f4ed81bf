"""Two CPU processes (gloo, through `charrnn train --nproc 2`) against one process, same global batch."""

from __future__ import annotations

import json

import pytest
import torch

from .conftest import charrnn, train_in_one_and_two_processes

ARGS = (
    "--hidden-size 48 --embed-size 16 --batch-size 8 --seq-len 24 --dropout 0 --max-steps 30 --eval-every 15 "
    "--log-every 5 --lr 1e-2 --warmup-steps 3 --seed 11 --device cpu"
).split()


@pytest.mark.slow
def test_two_processes_match_one_and_the_loss_falls(tmp_path, short_corpus_file):
    common = [str(short_corpus_file), *ARGS, "--cache-dir", str(tmp_path / "cache")]
    one, two = train_in_one_and_two_processes(tmp_path, common)
    assert two["cursor"]["step"] == one["cursor"]["step"] == 30
    # The saved hidden state covers the whole batch, gathered from both ranks.
    assert two["state"][0].shape == one["state"][0].shape

    records = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert losses[-1] < losses[0] - 0.5
    assert len([r for r in records if "val_loss" in r]) == 2  # only rank 0 evaluates and logs

    # A two-process run resumes in one process.
    resumed = charrnn("train", "--resume", str(tmp_path / "two"), "--max-steps", "35", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(tmp_path / "two" / "last.pt", weights_only=True)["cursor"]["step"] == 35
