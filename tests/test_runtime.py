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


def test_the_thread_governor_follows_a_busy_core_and_back():
    from charrnn.runtime import ThreadGovernor

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        governor = ThreadGovernor(torch.device("cpu"), None, steps=3, first=0.0)
        busy = {2: 0.30, 1: 0.10}  # a core taken by another program: two threads wait on each other
        # 3 steps timed on its count, then 1 + 3 on the other (the first warms the threads up)
        said = [governor.step_done(busy[torch.get_num_threads()]) for _ in range(7)]
        assert governor.current == 1 == torch.get_num_threads()
        assert any(line and "1 thread(s)" in line for line in said)
        idle = {2: 0.06, 1: 0.10}
        for _ in range(7):
            governor.step_done(idle[torch.get_num_threads()])
        assert governor.current == 2 == torch.get_num_threads()
        fixed = ThreadGovernor(torch.device("cpu"), 2, steps=3, first=0.0)  # --threads 2: never changed
        for _ in range(12):
            fixed.step_done(busy[torch.get_num_threads()])
        assert torch.get_num_threads() == 2 and not fixed.enabled
    finally:
        torch.set_num_threads(before)
