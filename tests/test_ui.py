from __future__ import annotations

import logging

import pytest
from rich.logging import RichHandler

from charrnn.ui import TrainProgress, setup_logging


@pytest.mark.parametrize(
    ("env", "rich"),
    [({"FORCE_COLOR": "1"}, True), ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False), ({}, False)],
)
def test_plain_progress_without_a_terminal_or_with_no_color(monkeypatch, env, rich):
    log = logging.getLogger("charrnn")  # conftest puts it back afterwards
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    console = setup_logging()  # under pytest stderr is not a terminal unless FORCE_COLOR says so
    handler = log.handlers[0]
    assert isinstance(handler, RichHandler) is rich
    assert TrainProgress(console).live is rich
