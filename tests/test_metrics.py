from __future__ import annotations

import json
import math

import pytest

from charrnn.errors import CharRNNError
from charrnn.metrics import MetricsLogger, MetricsRecord, read_metrics
from charrnn.ui import TrainProgress

INTERVAL = {
    "step": 50,
    "epoch": 0.125,
    "chars": 102400,
    "time": 3.5,
    "train_loss": 2.1,
    "lr": 0.003,
    "grad_norm": 0.8,
    "clipped": 0.1,
    "chars_per_sec": 29257.1,
}


def test_the_record_round_trips_through_a_metrics_line_with_today_s_keys():
    evaluated = MetricsRecord(**INTERVAL, val_loss=2.0, val_bpc=2.885)
    assert json.loads(evaluated.to_json()) == {**INTERVAL, "val_loss": 2.0, "val_bpc": 2.885}
    assert list(json.loads(evaluated.to_json())) == [*INTERVAL, "val_loss", "val_bpc"]  # key order kept
    final = MetricsRecord(step=60, epoch=0.15, chars=122880, time=4.0, val_loss=1.9, val_bpc=2.74)
    assert json.loads(final.to_json()) == {"step": 60, "epoch": 0.15, "chars": 122880, "time": 4.0} | {
        "val_loss": 1.9,
        "val_bpc": 2.74,
    }
    assert MetricsRecord.from_json(evaluated.to_json()) == evaluated
    assert MetricsRecord.from_json(final.to_json()) == final


def test_status_line_and_scalars_come_from_the_one_record():
    record = MetricsRecord(**INTERVAL)
    assert record.status(math.inf) == "step 50 | epoch 0.12 | 29,257 chars/s | loss 2.1000 | "
    assert record.status(1.95).endswith("| loss 2.1000 | val 1.9500 best")
    record.val_loss, record.val_bpc = 2.0, 2.885
    assert record.status(1.95).endswith("| val 2.0000 (2.885 bpc)")
    assert record.scalars() == {k: v for k, v in INTERVAL.items() if k != "step"} | {"val_loss": 2.0, "val_bpc": 2.885}


def test_the_logger_writes_jsonl_that_the_reader_reads_back(tmp_path):
    logger = MetricsLogger(tmp_path, TrainProgress(enabled=False), tensorboard=False, enabled=True)
    records = [
        MetricsRecord(**INTERVAL),
        MetricsRecord(step=60, epoch=0.15, chars=1, time=4.0, val_loss=1.9, val_bpc=2.7),
    ]
    for r in records:
        logger.write(r, 0.5, math.inf)
    assert read_metrics(tmp_path) == records == logger.history
    assert read_metrics(tmp_path / "last.pt") == records  # a checkpoint in the run folder names it too
    silent = MetricsLogger(tmp_path / "other", TrainProgress(enabled=False), tensorboard=False, enabled=False)
    silent.write(records[0], 0.5, math.inf)  # not the main process: writes nothing
    assert not (tmp_path / "other").exists() and silent.history == []


def test_unreadable_metrics(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(CharRNNError, match="no records"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n')  # no step
    with pytest.raises(CharRNNError, match="not valid JSON lines"):
        read_metrics(tmp_path)
