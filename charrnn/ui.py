"""The logger's handler and the training progress line (stderr), and the sample writer (stdout).

On stderr a terminal gets a live rich progress line; a pipe, a file or NO_COLOR gets plain log lines.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from charrnn.config import SampleConfig
    from charrnn.sample import Sample

log = logging.getLogger("charrnn")


def stderr_console() -> Console:
    return Console(stderr=True, no_color="NO_COLOR" in os.environ, highlight=False)


def setup_logging(debug: bool = False, quiet: bool = False) -> Console:
    console = stderr_console()
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    if console.is_terminal and "NO_COLOR" not in os.environ:
        handler: logging.Handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    return console


class TrainProgress:
    """A live progress line in a terminal; elsewhere one plain line per log interval."""

    def __init__(self, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or stderr_console()
        self.live = enabled and self.console.is_terminal and "NO_COLOR" not in os.environ
        self.enabled = enabled
        self.progress: Progress | None = None

    def __enter__(self) -> TrainProgress:
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]train[/]"),
                BarColumn(bar_width=24),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=1000, status="starting")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, fraction: float, status: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=min(1000, 1000 * fraction), status=status)
        elif self.enabled:
            log.info(status)


class SampleWriter:
    """Writes samples to stdout: the first streams live, the others follow it, separated.

    In jsonl mode nothing streams; each sample becomes one JSON object when it is complete.
    """

    def __init__(self, stream: TextIO, fmt: str, separator: str, cfg: SampleConfig) -> None:
        self.stream, self.fmt, self.separator, self.cfg = stream, fmt, separator, cfg
        self.interactive = stream.isatty()
        self.buffers: dict[int, list[str]] = {}
        self.last_flush = time.monotonic()
        if fmt == "text":
            self._write(cfg.prime)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        now = time.monotonic()
        if self.interactive or now - self.last_flush > 0.05:
            self.stream.flush()
            self.last_flush = now

    def emit(self, index: int, text: str) -> None:
        if self.fmt != "text":
            return
        if index == 0:
            self._write(text)
        else:
            self.buffers.setdefault(index, []).append(text)

    def finish(self, samples: list[Sample]) -> None:
        if self.fmt == "jsonl":
            for s in samples:
                record = {
                    "text": s.text,
                    "prime": s.prime,
                    "logprob": round(s.logprob, 4),
                    "seed": s.seed,
                    "chars_per_sec": round(s.chars_per_sec, 1),
                    "settings": s.settings,
                }
                self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            for i, s in enumerate(samples[1:], start=1):
                # Beam search's runners-up were not streamed; batched samples were buffered.
                body = "".join(self.buffers.get(i, [])) if self.cfg.beam is None else s.text
                self.stream.write(self.separator + self.cfg.prime + body)
        if self.cfg.beam is not None and len(samples) > 1:
            for i, s in enumerate(samples, start=1):
                log.info("hypothesis %d: log-prob %.3f", i, s.logprob)
        self.stream.flush()
