"""Mixed precision on every kind of CPU. The decision (auto, bf16, fp32) is tested for both kinds of
CPU through CHARRNN_CPU_BF16; real bf16 training runs where the CPU has native bf16, and where it
has not, the test checks the one-line refusal instead."""

from __future__ import annotations

import json

import pytest
import torch

from charrnn.errors import CharRNNError
from charrnn.runtime import BF16_OVERRIDE, cpu_supports_bf16, resolve_precision

from .conftest import SMALL, charrnn

CPU = torch.device("cpu")
TRAIN = [*SMALL, "--max-steps", "60", "--eval-every", "30", "--log-every", "10", "--lr", "1e-2", "--seed", "5"]


@pytest.fixture
def native(monkeypatch) -> bool:
    """Whether this CPU really has bf16 (the probe without the override)."""
    monkeypatch.delenv(BF16_OVERRIDE, raising=False)
    return cpu_supports_bf16()


def test_a_bf16_cpu_decides_bf16_for_auto(monkeypatch):
    monkeypatch.setenv(BF16_OVERRIDE, "1")
    assert resolve_precision("auto", CPU) is torch.bfloat16
    assert resolve_precision("bf16", CPU) is torch.bfloat16
    assert resolve_precision("fp32", CPU) is None
    with pytest.raises(CharRNNError, match="fp16 needs a GPU"):
        resolve_precision("fp16", CPU)


def test_a_cpu_without_bf16_decides_fp32_and_refuses_bf16(monkeypatch):
    monkeypatch.setenv(BF16_OVERRIDE, "0")
    assert resolve_precision("auto", CPU) is None
    assert resolve_precision("fp32", CPU) is None
    with pytest.raises(CharRNNError, match="no bf16 support"):
        resolve_precision("bf16", CPU)


def test_a_bad_override_is_named(monkeypatch):
    monkeypatch.setenv(BF16_OVERRIDE, "yes")
    with pytest.raises(CharRNNError, match=BF16_OVERRIDE):
        cpu_supports_bf16()


def _losses(run) -> tuple[list[float], list[float]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["train_loss"] for r in records if "train_loss" in r], [r["val_loss"] for r in records if "val_loss" in r]


def test_bf16_trains_where_the_cpu_has_it_and_is_refused_where_not(tmp_path, corpus_file, native):
    common = [str(corpus_file), *TRAIN, "--cache-dir", str(tmp_path / "cache")]
    bf16 = charrnn("train", *common, "--precision", "bf16", "--out", str(tmp_path / "bf16"), cwd=tmp_path)
    if not native:
        assert bf16.returncode == 1 and "Traceback" not in bf16.stderr
        assert bf16.stderr.strip().splitlines()[-1].startswith("charrnn: error: this CPU has no bf16 support")
        assert not (tmp_path / "bf16").exists()  # refused before anything was written
        return
    assert bf16.returncode == 0, bf16.stderr
    assert "bfloat16 autocast" in bf16.stderr
    fp32 = charrnn("train", *common, "--precision", "fp32", "--out", str(tmp_path / "fp32"), cwd=tmp_path)
    assert fp32.returncode == 0, fp32.stderr
    (train16, val16), (train32, val32) = _losses(tmp_path / "bf16"), _losses(tmp_path / "fp32")
    assert train16[-1] < train16[0] - 0.5 and train32[-1] < train32[0] - 0.5
    # bf16 rounds activations to 8 bits of mantissa: the same run, not the same numbers.
    assert val16[-1] == pytest.approx(val32[-1], abs=0.15)


def test_the_override_reaches_the_command(tmp_path, corpus_file, monkeypatch):
    """Told the CPU has no bf16, auto trains in fp32 on any machine (no autocast in the log)."""
    monkeypatch.setenv(BF16_OVERRIDE, "0")
    args = [str(corpus_file), *SMALL, "--max-steps", "2", "--cache-dir", str(tmp_path / "cache")]
    result = charrnn("train", *args, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "autocast" not in result.stderr and "lstm 2x64" in result.stderr
