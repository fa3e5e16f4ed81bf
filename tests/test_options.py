"""Every option recorded from a0cd22a still exists with the same names and the same effective default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.options_dump import options

RECORDED = json.loads((Path(__file__).parent / "data" / "cli_options.json").read_text())
NOW = options()


@pytest.mark.parametrize("command,flag", [(c, f) for c, opts in RECORDED.items() for f in opts])
def test_recorded_option_is_unchanged(command: str, flag: str) -> None:
    assert command in NOW, f"command {command} is gone"
    assert flag in NOW[command], f"{command} {flag} is gone"
    assert NOW[command][flag] == RECORDED[command][flag]
