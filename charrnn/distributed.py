"""Data-parallel training through torch.distributed: launched by torchrun, gloo on CPU, NCCL on CUDA.

With one process every helper here is a no-op, so the training loop reads the same either way.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

STOP_REASONS = (None, "max_steps", "epochs", "time_budget", "signal")


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def setup(device: torch.device) -> DistInfo:
    """Join the process group that torchrun describes in the environment, once."""
    if world_size() <= 1:
        return DistInfo()
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def teardown(info: DistInfo) -> None:
    if info.world > 1 and dist.is_initialized():
        # Gloo's worker threads free finished work after a collective has returned, and freeing
        # its tensors takes the GIL. The group is destroyed later, when DDP's reducer is freed,
        # and its destructor joins those threads while holding the GIL: a deadlock we hit at exit
        # about one run in five. So meet at a barrier, then let go of the GIL for a moment so the
        # threads can finish freeing the barrier's and every earlier collective's work.
        dist.barrier()
        time.sleep(0.2)
        dist.destroy_process_group()


def device_for(device: torch.device, info: DistInfo) -> torch.device:
    """Each process on a machine takes its own GPU."""
    if device.type == "cuda" and info.world > 1:
        return torch.device("cuda", info.local_rank)
    return device


def wrap(model: nn.Module, info: DistInfo) -> nn.Module:
    if info.world <= 1:
        return model
    device_ids = [info.local_rank] if next(model.parameters()).is_cuda else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def agree(reason: str | None, info: DistInfo) -> str | None:
    """A stop wanted by any rank is taken by all (the most urgent reason wins)."""
    if info.world <= 1:
        return reason
    flag = torch.tensor([STOP_REASONS.index(reason)], device=_device())
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return STOP_REASONS[int(flag.item())]


def gather_rows(state: tuple[torch.Tensor, ...], info: DistInfo) -> tuple[torch.Tensor, ...]:
    """The whole batch's hidden state from every rank's rows (dim 1), for the checkpoint."""
    if info.world <= 1:
        return state
    gathered = []
    for s in state:
        parts = [torch.empty_like(s) for _ in range(info.world)]
        dist.all_gather(parts, s.contiguous())
        gathered.append(torch.cat(parts, dim=1))
    return tuple(gathered)


def broadcast_float(value: float | None, info: DistInfo) -> float:
    if info.world <= 1:
        return float(value)
    t = torch.tensor([value if value is not None else 0.0], dtype=torch.float64, device=_device())
    dist.broadcast(t, src=0)
    return float(t.item())


def broadcast_str(text: str) -> str:
    box = [text]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def launch(nproc: int, argv: list[str]) -> int:
    """Run `charrnn <argv>` in nproc processes on this machine through torchrun; returns its status."""
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "charrnn",
        *argv,
    ]
    return subprocess.call(cmd)
