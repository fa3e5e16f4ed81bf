"""CI's rule on skips (tests/skip_rule.py), run on a small suite of its own in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import ROOT

SUITE = """
import pytest

def test_runs():
    pass

@pytest.mark.skipif(True, reason="machine lacks a GPU")
def test_needs_hardware():
    pass

def test_skips_for_want_of_a_file():
    pytest.skip("the corpus is not present")
"""


def _pytest(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
    env["PYTHONPATH"] = str(ROOT)
    args = [sys.executable, "-m", "pytest", "-q", "-p", "tests.skip_rule", "-p", "no:cacheprovider", str(tmp_path)]
    return subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env)


def test_in_ci_only_missing_hardware_may_skip(tmp_path):
    result = _pytest(tmp_path, ci=True)
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed, 1 skipped" in result.stdout
    assert "reason other than missing hardware: Skipped: the corpus is not present" in result.stdout


def test_outside_ci_skips_stay_skips(tmp_path):
    result = _pytest(tmp_path, ci=False)
    assert result.returncode == 0 and "1 passed, 2 skipped" in result.stdout, result.stdout
