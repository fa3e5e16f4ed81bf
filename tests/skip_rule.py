"""The rule that CI runs every test: with CI set, a test may skip only because the machine lacks
hardware or a capability of the installed torch build, and its reason says so. A suite that
passes by skipping what it could not run tests less than it claims. Loaded by tests/conftest.py."""

from __future__ import annotations

import os

import pytest

MACHINE_LACKS = "machine lacks"


def machine_lacks(what: str) -> str:
    """The reason text of a skip that CI accepts, e.g. `skipif(..., reason=machine_lacks("a GPU"))`."""
    return f"{MACHINE_LACKS} {what}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
        if MACHINE_LACKS not in reason:
            report.outcome = "failed"
            report.longrepr = f"skipped in CI for a reason other than missing hardware: {reason}"
