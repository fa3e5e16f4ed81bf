"""What `charrnn train --time-budget` reaches: `--size auto` against the fixed defaults, side by side.

Each run is the real command, pinned to its own two cores (taskset), on the CPU kinds the issue
names: AVX2-only (emulated on a newer CPU by capping oneDNN and ATen to AVX2 kernels, fp32) and
AVX512-BF16 (native, precision auto = bf16 autocast). Afterwards `charrnn eval` scores each run's
best.pt on the last 10% of its corpus (the validation split). Runs are started detached
(`--start`), so that a machine's other work can go on, and gathered with `--collect`.

    python bench/time_budget.py --start --budget 10m --corpus data/tinyshakespeare.txt --corpus data/python.txt:avx2
    python bench/time_budget.py --collect            # waits, evaluates, prints the table, writes the JSON
    python bench/time_budget.py --start --corpus tinyshakespeare.txt:native --size auto   # this machine alone
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
# name: (CPU kind, extra environment, extra train flags)
KINDS = {
    "avx2": ("AVX2 kernels, fp32", AVX2, ["--precision", "fp32"]),
    "bf16": ("AVX512-BF16, bf16 autocast", {}, ["--precision", "auto"]),
    "native": ("this CPU's own kernels, fp32", {}, ["--precision", "fp32"]),
}


def plan(corpora: list[str], sizes: list[str]) -> list[dict]:
    """Each corpus as PATH or PATH:KIND,KIND (the CPU kinds to run it on; avx2 and bf16 by default),
    each with every --size in sizes."""
    runs = []
    for spec in corpora:
        corpus, _, kinds = spec.partition(":")
        for kind in kinds.split(",") if kinds else ("avx2", "bf16"):
            for size in sizes:
                runs.append(
                    {"corpus": corpus, "kind": kind, "size": size, "name": f"{Path(corpus).stem}-{kind}-{size}"}
                )
    return runs


def start(runs: list[dict], budget: str, work: Path, extra: list[str]) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for i, run in enumerate(runs):
        _, env, flags = KINDS[run["kind"]]
        n = os.cpu_count() or 2
        cores = f"{2 * i % n},{(2 * i + 1) % n}"
        cmd = ["taskset", "-c", cores, sys.executable, "-m", "charrnn", "train", run["corpus"], "--time-budget", budget]
        cmd += [*flags, "--size", run["size"], "--seed", "1", "--device", "cpu", "--out", str(work / run["name"])]
        cmd += ["--cache-dir", str(work / "cache" / run["name"]), *extra]
        run.update(cores=cores, command=" ".join(cmd), budget=budget)
        log = (work / f"{run['name']}.log").open("w")
        environ = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        run["pid"] = subprocess.Popen(cmd, stdout=log, stderr=log, env=environ, start_new_session=True).pid
    (work / "plan.json").write_text(json.dumps(runs, indent=1))


def collect(work: Path, out: Path) -> None:
    runs = json.loads((work / "plan.json").read_text())
    for run in runs:
        while Path(f"/proc/{run['pid']}").exists() and "zombie" not in _state(run["pid"]):
            time.sleep(5)
    for run in runs:
        text = Path(run["corpus"]).read_text(encoding="utf-8")
        val = work / f"{Path(run['corpus']).stem}.val.txt"
        val.write_text(text[len(text) - int(len(text) * 0.1) :], encoding="utf-8")
        _, env, _ = KINDS[run["kind"]]
        evaluated = subprocess.run(
            [sys.executable, "-m", "charrnn", "eval", str(val), "-c", str(work / run["name"] / "best.pt"), "--json"],
            capture_output=True,
            text=True,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        )
        run["eval"] = json.loads(evaluated.stdout) if evaluated.returncode == 0 else evaluated.stderr.strip()
        metrics = [json.loads(line) for line in (work / run["name"] / "metrics.jsonl").read_text().splitlines()]
        speeds = [m for m in metrics if m.get("chars_per_sec")]
        run["steps"], run["chars_per_sec"] = metrics[-1].get("step"), speeds[-1]["chars_per_sec"] if speeds else None
        auto = work / run["name"] / "autosize.json"
        run["autosize"] = json.loads(auto.read_text()) if auto.exists() else None
        print(
            f"{run['name']:<28} {KINDS[run['kind']][0]:<28} "
            f"{(run['autosize'] or {}).get('chosen', '2x384 (defaults)'):<18} "
            f"{run['eval'].get('nats_per_token', float('nan')) if isinstance(run['eval'], dict) else run['eval']}"
        )
    out.write_text(json.dumps({"cpu": record.cpu_name(), "cpu_kind": record.cpu_kind(), "runs": runs}, indent=1) + "\n")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "zombie"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", action="store_true")
    parser.add_argument("--collect", action="store_true")
    parser.add_argument("--budget", default="10m")
    parser.add_argument("--corpus", action="append", default=[])
    parser.add_argument("--size", action="append", choices=("default", "auto"), help="default: both")
    parser.add_argument("--work", type=Path, default=Path("/tmp/time_budget"))
    parser.add_argument("--train-flags", default="", help="more `charrnn train` flags for every run, e.g. '--seed 2'")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "time_budget.json")
    args = parser.parse_args()
    if args.start:
        start(
            plan(args.corpus, args.size or ["default", "auto"]), args.budget, args.work, shlex.split(args.train_flags)
        )
    if args.collect:
        collect(args.work, args.out)
