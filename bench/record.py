"""What every benchmark writes beside its table: the command, the machine, and its rows, as JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path


def _cpuinfo(key: str) -> str | None:
    """The first value of `key` in /proc/cpuinfo (Linux), else None."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.split(":")[0].strip() == key), None)


def cpu_name() -> str:
    """The CPU's model name where /proc/cpuinfo gives it, else the architecture."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_kind() -> str:
    """The vector extensions that set this project's CPU speeds: AMX, AVX512-BF16, AVX2 (or unknown)."""
    flags = set((_cpuinfo("flags") or "").split())
    for flag, kind in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx2", "AVX2")):
        if flag in flags:
            return kind
    return "unknown"


def write(out: str | Path, meta: dict, rows: list[dict]) -> None:
    """{"meta": the command that ran, the CPU, its kind and its cores, then `meta`; "rows": rows} to `out`."""
    script = Path(sys.argv[0]).name
    head = {
        "command": " ".join(["python", f"bench/{script}", *sys.argv[1:]]),
        "cpu": cpu_name(),
        "cpu_kind": cpu_kind(),
        "cores": os.cpu_count(),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": head | meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
