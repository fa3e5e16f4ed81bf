from __future__ import annotations

import pytest
import torch

from charrnn import runtime
from charrnn.errors import CharRNNError


def test_precision_and_device_checks():
    assert runtime.resolve_device("cpu").type == "cpu"
    with pytest.raises(CharRNNError, match="unknown device"):
        runtime.resolve_device("tpu:0")
    if not torch.cuda.is_available():
        with pytest.raises(CharRNNError, match="no CUDA GPU"):
            runtime.resolve_device("cuda")
    with pytest.raises(CharRNNError, match="fp16 needs a GPU"):
        runtime.resolve_precision("fp16", torch.device("cpu"))
    assert runtime.resolve_precision("fp32", torch.device("cpu")) is None


def test_autocast_is_off_for_fp32_and_on_for_a_dtype():
    cpu = torch.device("cpu")
    with runtime.autocast(cpu, None):
        assert not torch.is_autocast_enabled("cpu")
    with runtime.autocast(cpu, torch.bfloat16):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
