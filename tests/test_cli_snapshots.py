"""Snapshots and samples while training, end to end through the real command in a subprocess."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import SMALL, charrnn, charrnn_here


@pytest.fixture(scope="module")
def run(tmp_path_factory, corpus_file) -> Path:
    """A run that kept a snapshot every 20 steps (the last two left) and sampled at each evaluation."""
    cwd = tmp_path_factory.mktemp("snapshots")
    args = ["--max-steps", "80", "--eval-every", "40", "--keep-every", "20", "--keep-last", "2", "--val-frac", "0.02"]
    trained = charrnn(
        "train", str(corpus_file), *SMALL, *args, "--sample-prime", "ROMEO:", "--sample-length", "50",
        "--precision", "fp32", "--out", "run", cwd=cwd,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "sample at step 40 · " in trained.stderr and trained.stdout == ""
    return cwd / "run"


def test_keep_last_leaves_the_newest_snapshots(run):
    assert sorted(p.name for p in run.glob("step-*.pt")) == ["step-60.pt", "step-80.pt"]
    assert not list(run.glob(".*.tmp"))


def test_sample_and_eval_a_snapshot(run, corpus_file):
    by_step = charrnn("sample", "-c", str(run), "--step", "60", "-n", "30", "--seed", "2", cwd=run)
    by_file = charrnn_here("sample", "-c", str(run / "step-60.pt"), "-n", "30", "--seed", "2", cwd=run)
    latest = charrnn_here("sample", "-c", str(run), "-n", "30", "--seed", "2", cwd=run)
    assert by_step.returncode == 0 and len(by_step.stdout) == 30, by_step.stderr
    assert by_step.stdout == by_file.stdout != latest.stdout
    evals = [charrnn_here("eval", str(corpus_file), *where, "--json", cwd=run.parent) for where in STEP_80]
    assert evals[0].returncode == 0, evals[0].stderr
    assert json.loads(evals[0].stdout) == json.loads(evals[1].stdout)
    missing = charrnn_here("sample", "-c", str(run), "--step", "20", cwd=run)
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith("has no snapshot of step 20 (step-20.pt); steps kept: 60, 80")


STEP_80 = (["-c", "run", "--step", "80"], ["-c", "run/step-80.pt"])  # relative to the run's parent


def test_info_lists_the_snapshots_with_their_val_loss(run):
    shown = charrnn("info", str(run), cwd=run)
    assert shown.returncode == 0, shown.stderr
    rows = re.findall(r"snapshot step-(\d+)\.pt\s*│\s*step \d+, val loss ([\d.]+) nats/token", shown.stdout)
    metrics = {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}
    assert [(int(s), float(v)) for s, v in rows] == [(s, round(metrics[s]["val_loss"], 4)) for s in (60, 80)]


def test_timelapse_prints_the_stages_in_order(run):
    shown = charrnn("timelapse", str(run), cwd=run)
    assert shown.returncode == 0, shown.stderr
    headers = re.findall(r"^── step (\d+) · [\d,]+ chars seen · val [\d.]+ nats/token", shown.stdout, re.M)
    assert headers == ["20", "40", "60", "80"]  # each snapshot step was evaluated, so sampled
    stages = re.split(r"^── step .*──\n", shown.stdout, flags=re.M)[1:]
    assert len(stages) == 4 and all(stage.startswith("ROMEO:") for stage in stages)  # the same prime each time
    as_json = charrnn_here("timelapse", str(run), "--json", cwd=run)
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["step"] for r in records] == [20, 40, 60, 80] and {r["prime"] for r in records} == {"ROMEO:"}
