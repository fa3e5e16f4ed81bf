"""A CPU hog: separate processes that keep cores busy, so a benchmark can show a busy machine.

    python bench/hog.py --procs 1 --seconds 60            # one core busy for a minute
    python bench/hog.py --procs 2 --seconds 5 --after 2   # both cores, for 5 s, starting in 2 s

Each process spins in pure Python (no threads shared with the measured program); all stop by
themselves when the time is up, or when the parent is killed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time


def spin(seconds: float, parent: int) -> None:
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end and os.getppid() == parent:
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF


def hog(procs: int, seconds: float, after: float = 0.0) -> None:
    """Keep `procs` cores busy for `seconds`, starting `after` seconds from now (blocks until done)."""
    time.sleep(after)
    workers = [mp.Process(target=spin, args=(seconds, os.getpid())) for _ in range(procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def start(procs: int, seconds: float, after: float = 0.0) -> mp.Process:
    """hog() in the background; returns its process (terminate it to stop early)."""
    p = mp.Process(target=hog, args=(procs, seconds, after))
    p.start()
    return p


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--after", type=float, default=0.0)
    args = parser.parse_args()
    hog(args.procs, args.seconds, args.after)
