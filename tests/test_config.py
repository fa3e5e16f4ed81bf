from __future__ import annotations

import pytest

from charrnn import config
from charrnn.errors import CharRNNError


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("1h30m", 5400), ("45", 45), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert config.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m", "-5s"])
def test_bad_durations(text):
    with pytest.raises(CharRNNError, match="duration"):
        config.parse_duration(text)
