"""Where and how tensors run: the device and the autocast precision.

Training, sampling, evaluation and gradflow all use these; none of them imports the trainer for it.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

from charrnn.errors import CharRNNError


def resolve_device(name: str) -> torch.device:
    """'auto' (a GPU when there is one), 'cpu', 'cuda' or 'cuda:N', checked against this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CharRNNError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise CharRNNError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CharRNNError(f"device {name} asks for CUDA, but no CUDA GPU is available; use device cpu", "device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CharRNNError(f"device {name}: only {torch.cuda.device_count()} GPU(s) present", "device")
        # PyTorch lets cuDNN's RNN kernels round fp32 to TF32 by default, so a sequence fed at once
        # and one stepped through matmuls differed by 2e-5 on an H100: fp32 here means fp32
        # (mixed precision is autocast's job, and auto picks bf16 on a GPU).
        torch.backends.cudnn.allow_tf32 = False
    return device


BF16_OVERRIDE = "CHARRNN_CPU_BF16"  # 1 or 0: take the CPU to have (or lack) native bf16, whatever it has


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast pays off.

    CHARRNN_CPU_BF16=1 or 0 overrides the probe, so one machine can exercise the other kind's
    decisions (tests; a user who wants bf16 emulated anyway)."""
    override = os.environ.get(BF16_OVERRIDE)
    if override is not None:
        if override not in ("0", "1"):
            raise CharRNNError(f"{BF16_OVERRIDE} must be 0 or 1, got {override!r}")
        return override == "1"
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. Master weights always stay fp32."""
    if device.type == "cuda":
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if precision == "fp16":
        raise CharRNNError("precision fp16 needs a GPU; use bf16 or fp32 on the CPU", "precision")
    if precision == "bf16" and not cpu_supports_bf16():
        raise CharRNNError(
            "this CPU has no bf16 support for recurrent layers (AVX512-BF16); use precision fp32", "precision"
        )
    # auto: bf16 where the CPU has native bf16 units, else fp32 (emulated bf16 is slower).
    return torch.bfloat16 if precision == "bf16" or (precision == "auto" and cpu_supports_bf16()) else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to `dtype` on `device`, or a disabled one for plain fp32."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


class ThreadGovernor:
    """Chooses the CPU training step's intra-op threads by timing steps, and keeps timing them.

    With one of two cores busy elsewhere, OpenMP's threads wait for each other at every operation: the
    demo's 2x256 LSTM trained 13-15K chars/s on two threads and 46K on one (2-core AMD EPYC, one core
    hogged; bench/demo.py). Idle, two threads are the faster. So after each pause the loop times `steps`
    steps at the other count and keeps whichever was faster (medians: one slow step moves nothing).
    The pause doubles, up to `cap` seconds, while the choice holds, and starts again short when it
    changes. A fixed count (`threads`) or a single core turns it off.
    """

    def __init__(
        self, device: torch.device, threads: int | None, steps: int = 6, first: float = 4.0, cap: float = 64.0
    ):
        if threads is not None:
            torch.set_num_threads(threads)
        most = torch.get_num_threads()
        self.enabled = device.type == "cpu" and threads is None and most > 1
        self.counts, self.current, self.steps = (most, 1), most, steps
        self.first, self.cap, self.pause = first, cap, first
        self.recent: list[float] = []
        self.trial: list[float] | None = None
        self.next_trial = time.perf_counter() + first

    def step_done(self, seconds: float) -> str | None:
        """Count one step's seconds; returns a line to log when the thread count changes."""
        if not self.enabled:
            return None
        if self.trial is None:
            self.recent = [*self.recent[-(self.steps - 1) :], seconds]
            if len(self.recent) == self.steps and time.perf_counter() >= self.next_trial:
                self.trial = []
                torch.set_num_threads(self._other())
            return None
        self.trial.append(seconds)
        if len(self.trial) <= self.steps:  # the first step on a new count warms its threads: left out
            return None
        mine, other = statistics.median(self.recent), statistics.median(self.trial[1:])
        switch = other < 0.95 * mine
        if switch:
            self.current, self.pause = self._other(), self.first
        else:
            torch.set_num_threads(self.current)
            self.pause = min(self.cap, 2 * self.pause)
        self.trial, self.recent = None, []
        self.next_trial = time.perf_counter() + self.pause
        if not switch:
            return None
        return f"training on {self.current} thread(s): a step took {other * 1e3:.0f} ms there, {mine * 1e3:.0f} ms on {self._other()}"

    def _other(self) -> int:
        return self.counts[1] if self.current == self.counts[0] else self.counts[0]
