"""--size auto: the table's interpolation, the choice from measured speeds, and the command end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from charrnn import autosize
from charrnn.autosize import CANDIDATES, LOSSES, M
from charrnn.config import TrainConfig
from charrnn.errors import CharRNNError
from tests.conftest import SMALL, charrnn, charrnn_here


def test_table_points_are_hit_exactly_and_the_ends_behave():
    for name, points in LOSSES.items():
        for chars, loss in points.items():
            assert autosize.predicted_loss(name, chars, autosize.TABLE_CORPUS_CHARS) == pytest.approx(loss)
        first, last = min(points), max(points)
        # Fewer characters than the sweep trained: worse. More: no credit beyond its last point.
        assert autosize.predicted_loss(name, first / 4, 1e6) > points[first]
        assert autosize.predicted_loss(name, last * 10, 1e6) == pytest.approx(points[last])


@given(st.floats(1e5, 1e9), st.floats(1e6, 1e7))
def test_interpolation_stays_between_neighbouring_points(chars, corpus_chars):
    points = LOSSES["2x512"]
    xs = sorted(points)
    if xs[0] <= chars <= xs[-1]:
        loss = autosize.predicted_loss("2x512", chars, autosize.TABLE_CORPUS_CHARS)
        assert min(points.values()) - 1e-9 <= loss <= max(points.values()) + 1e-9
    # A corpus that repeats less lowers (never raises) the expected loss.
    assert autosize.predicted_loss("2x512", chars, corpus_chars * 10) <= autosize.predicted_loss(
        "2x512", chars, corpus_chars
    )


def test_dropout_grows_with_passes_over_the_corpus():
    assert autosize.dropout_for(1 * M, 1 * M) == 0.0
    assert autosize.dropout_for(4 * M, 1 * M) == 0.12
    assert autosize.dropout_for(8 * M, 1 * M) == 0.24
    assert autosize.dropout_for(64 * M, 1 * M) == 0.3


def fake_speeds(speeds: dict[str, float], measured: list[str]):
    def measure(model: dict, train: dict) -> float:
        name = next(c.name for c in CANDIDATES if c.hidden_size == model["hidden_size"])
        measured.append(name)
        return speeds[name] * (0.5 if train["batch_size"] == autosize.SMALL_BATCH else 1.0)

    return measure


def test_a_slow_machine_gets_a_small_model_and_a_fast_one_a_larger():
    slow, fast = [], []
    # Speeds in the ratio of the candidates' work, as a CPU gives them.
    per_work = {c.name: 1.0 / autosize.recurrent_work(c, 128) for c in CANDIDATES}
    choice_slow = autosize.choose(fake_speeds({n: 1.3e10 * w for n, w in per_work.items()}, slow), 600, 1e6, 128)
    choice_fast = autosize.choose(fake_speeds({n: 1.0e11 * w for n, w in per_work.items()}, fast), 600, 1e6, 128)
    sizes = {c.name: c.hidden_size for c in CANDIDATES}
    assert sizes[choice_slow.name] < sizes[choice_fast.name]
    # The chosen one is the lowest expected loss among those measured; hopeless larger ones go unmeasured.
    assert choice_slow.name == min(choice_slow.probes, key=lambda p: p.predicted_loss).name
    assert len(slow) < len(CANDIDATES)
    assert choice_slow.model["hidden_size"] == sizes[choice_slow.name]
    assert choice_slow.to_dict()["chosen"] == choice_slow.name
    assert autosize.Choice.from_dict(choice_slow.to_dict()).name == choice_slow.name


def test_probes_draw_dropout_masks_where_the_run_will():
    # The masks cost time, so a probe without them would overstate the characters a run trains.
    def measure(model: dict, train: dict) -> float:
        dropouts.append((model["hidden_size"], model["dropout"]))
        return 2e5 * 128 / model["hidden_size"]

    dropouts: list[tuple[int, float]] = []
    autosize.choose(measure, 600, 1e6, 128)  # tens of passes over a small corpus
    assert len(dropouts) > 2 and all(d > 0 for _, d in dropouts)
    dropouts.clear()
    autosize.choose(measure, 600, 1e9, 128)  # a fraction of one pass: only the first, unguessed, has them
    first = CANDIDATES[0].hidden_size
    assert len({h for h, _ in dropouts}) > 1
    assert all((d > 0) == (h == first) for h, d in dropouts)


def test_the_small_batch_is_taken_where_it_keeps_its_speed_and_the_passes_are_few():
    def measure_at(small_batch_speed: float):
        def measure(model: dict, train: dict) -> float:
            measured.append(train["batch_size"])
            speed = 3e10 / autosize.recurrent_work(
                next(c for c in CANDIDATES if c.hidden_size == model["hidden_size"]), 128
            )
            return speed * (small_batch_speed if train["batch_size"] == autosize.SMALL_BATCH else 1.0)

        return measure

    measured: list[int] = []
    corpus = 2e6  # the budget buys a few passes, more characters than the steep start of the table
    assert autosize.choose(measure_at(0.9), 600, corpus, 128).train["batch_size"] == autosize.SMALL_BATCH
    assert set(measured) == {autosize.BATCH_SIZE, autosize.SMALL_BATCH}
    assert autosize.choose(measure_at(0.6), 600, corpus, 128).train["batch_size"] == autosize.BATCH_SIZE
    many_passes = autosize.choose(measure_at(0.9), 600, 1e5, 128)
    assert many_passes.train["batch_size"] == autosize.BATCH_SIZE
    # Ruled-out sizes are recorded, with no predicted loss, and read back.
    record = many_passes.to_dict()
    assert any(p["batch_size"] == autosize.SMALL_BATCH and p["predicted_loss"] is None for p in record["probes"])
    assert autosize.Choice.from_dict(record).probes[-1].batch_size in (autosize.BATCH_SIZE, autosize.SMALL_BATCH)
    measured.clear()
    autosize.choose(measure_at(0.9), 600, corpus, 128, batch_sizes=(autosize.BATCH_SIZE,))
    assert set(measured) == {autosize.BATCH_SIZE}


def test_auto_applies_with_a_budget_and_no_size():
    budget = TrainConfig(time_budget=60)
    assert autosize.applies(budget, {})
    assert autosize.applies(budget, {"embed_size": 64})
    assert not autosize.applies(budget, {"hidden_size": 64})
    assert not autosize.applies(TrainConfig(time_budget=60, size="default"), {})
    assert not autosize.applies(TrainConfig(max_steps=10), {})
    assert autosize.applies(TrainConfig(time_budget=60, size="auto"), {"hidden_size": 64})
    with pytest.raises(CharRNNError, match="time_budget"):
        TrainConfig(max_steps=10, size="auto")
    with pytest.raises(CharRNNError, match="size must be one of"):
        TrainConfig(time_budget=60, size="huge")


def test_measure_speed_counts_characters_per_second():
    from charrnn.config import ModelConfig
    from charrnn.model import CharRNN

    ids = torch.randint(0, 30, (5000,)).numpy()
    model = CharRNN(ModelConfig(vocab_size=30, hidden_size=32, embed_size=16, layers=1))
    speed = autosize.measure_speed(model, ids, 4, 16, 1.0, torch.device("cpu"), None, seconds=0.05)
    assert math.isfinite(speed) and speed > 0


@pytest.mark.slow
def test_train_fits_the_size_to_the_budget_and_records_it(corpus_file, tmp_path):
    run = tmp_path / "auto"
    done = charrnn(
        "train", str(corpus_file), "--time-budget", "12s", "--precision", "fp32", "--out", str(run), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "size auto:" in done.stderr
    record = json.loads((run / "autosize.json").read_text())
    assert record["chosen"] in {c.name for c in CANDIDATES}
    assert [p["candidate"] for p in record["probes"]][0] == "2x256"
    saved = torch.load(run / "best.pt", weights_only=True)
    assert saved["model_config"]["hidden_size"] == record["model"]["hidden_size"]
    assert saved["train_config"]["lr"] == record["train"]["lr"]
    assert saved["train_config"]["weight_decay"] == record["train"]["weight_decay"] == autosize.WEIGHT_DECAY


def test_explicit_settings_win_over_auto(corpus_file, tmp_path):
    run = tmp_path / "given"
    args = ["--time-budget", "4s", "--size", "auto", *SMALL, "--layers", "1", "--lr", "0.002", "--out", str(run)]
    done = charrnn_here("train", str(corpus_file), *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((run / "autosize.json").read_text())
    assert record["chosen"] == "given" and [p["candidate"] for p in record["probes"]] == ["given"]
    assert "hidden_size" not in record["model"] and "lr" not in record["train"] and "batch_size" not in record["train"]
    assert record["train"]["weight_decay"] == autosize.WEIGHT_DECAY  # left unset, so auto's
    saved = torch.load(run / "best.pt", weights_only=True)
    assert saved["model_config"]["hidden_size"] == 64 and saved["model_config"]["layers"] == 1
    assert saved["train_config"]["lr"] == 0.002 and saved["train_config"]["batch_size"] == 8
    assert "dropout" in record["model"]  # what was left unset, auto filled


def test_size_default_and_no_budget_mean_no_probing(corpus_file, tmp_path):
    done = charrnn("train", str(corpus_file), *SMALL, "--max-steps", "3", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 0 and not (tmp_path / "r" / "autosize.json").exists()
    bad = charrnn_here("train", str(corpus_file), "--size", "auto", "--max-steps", "3", cwd=tmp_path)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "--time-budget" in bad.stderr
