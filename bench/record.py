"""What every benchmark writes beside its table: the command, the machine, and its rows, as JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name where /proc/cpuinfo gives it (Linux), else the architecture."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def write(out: str | Path, meta: dict, rows: list[dict]) -> None:
    """{"meta": the command that ran, the CPU and its cores, then `meta`; "rows": rows} to `out`."""
    script = Path(sys.argv[0]).name
    head = {
        "command": " ".join(["python", f"bench/{script}", *sys.argv[1:]]),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": head | meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
