from __future__ import annotations

import shutil
import sys
from dataclasses import replace

import pytest

from charrnn import plot
from charrnn.errors import CharRNNError
from charrnn.metrics import MetricsRecord, read_metrics

from .conftest import png_size


@pytest.fixture
def two_runs(trained_run, tmp_path) -> list[str]:
    """The trained run and a copy whose losses are shifted, as a second run to overlay."""
    other = tmp_path / "other-run"
    other.mkdir()
    records = read_metrics(trained_run)

    def shifted(r: MetricsRecord) -> MetricsRecord:
        return replace(
            r,
            train_loss=None if r.train_loss is None else r.train_loss + 0.5,
            val_loss=None if r.val_loss is None else r.val_loss + 0.5,
        )

    (other / "metrics.jsonl").write_text("".join(shifted(r).to_json() + "\n" for r in records))
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
        read_metrics(str(tmp_path))
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    (copy / "metrics.jsonl").write_text("{not json\n")
    with pytest.raises(CharRNNError, match="not valid JSON"):
        read_metrics(str(copy / "best.pt"))
    with pytest.raises(CharRNNError, match="size must"):
        plot.parse_size("big")
