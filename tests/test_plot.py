from __future__ import annotations

import json
import shutil
import sys

import pytest

from charrnn import plot
from charrnn.errors import CharRNNError

from .conftest import png_size


@pytest.fixture
def two_runs(trained_run, tmp_path) -> list[str]:
    """The trained run and a copy whose losses are shifted, as a second run to overlay."""
    other = tmp_path / "other-run"
    other.mkdir()
    records = plot.load_metrics(str(trained_run))
    shifted = [{**r, **{k: r[k] + 0.5 for k in ("train_loss", "val_loss") if k in r}} for r in records]
    (other / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in shifted))
    return [str(trained_run), str(other)]


def test_png_of_two_runs_has_the_asked_size(two_runs, tmp_path):
    out = tmp_path / "runs.png"
    assert plot.render(two_runs, out, (900, 600)) is None
    assert png_size(out) == (900, 600)


def test_without_matplotlib_a_png_is_an_error_and_text_charts_still_work(two_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert plot.pyplot() is None
    with pytest.raises(CharRNNError, match="needs matplotlib"):
        plot.render(two_runs, tmp_path / "x.png", (900, 600))
    assert not (tmp_path / "x.png").exists()
    text = plot.render(two_runs, tmp_path / "x.png", (900, 600), terminal=True)
    assert "loss (nats/token) against characters seen" in text and "gradient norm" in text
    assert "* run train" in text and "other-run val" in text


def test_text_chart_puts_points_at_the_corners():
    chart = plot.text_chart("t", [("a", [0, 10], [1.0, 2.0])], width=20, height=5).splitlines()
    rows = chart[1:6]
    assert rows[0].endswith("*") and rows[-1][11] == "*"  # (10, 2) top right, (0, 1) bottom left
    assert rows[0].strip().startswith("2 |") and rows[-1].strip().startswith("1 |")


def test_labels_and_errors(trained_run, tmp_path):
    assert plot.run_labels(["a/x", "b/y"]) == ["x", "y"]
    assert plot.run_labels(["a/x", "b/x"]) == ["a/x", "b/x"]
    with pytest.raises(CharRNNError, match="no metrics.jsonl"):
        plot.load_metrics(str(tmp_path))
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    (copy / "metrics.jsonl").write_text("{not json\n")
    with pytest.raises(CharRNNError, match="not valid JSON"):
        plot.load_metrics(str(copy / "best.pt"))
    with pytest.raises(CharRNNError, match="--size"):
        plot.parse_size("big")
