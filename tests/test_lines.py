"""One item per line (charrnn.lines): the batching's properties, every cell, validation, and the CLI end to end
on a generated list of names (train, resume, sample 20 items, eval, novelty)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn.config import CELLS, ModelConfig
from charrnn.evaluate import evaluate_lines
from charrnn.lines import IGNORE, LineBatches, line_spans
from charrnn.model import CharRNN
from tests import corpora
from tests.conftest import SMALL, charrnn, charrnn_here

NL = 0  # the newline's id in the generated id streams


def id_streams() -> st.SearchStrategy[np.ndarray]:
    """Token streams of lines (ids 1..5) separated by newlines (0), possibly empty lines, possibly no final one."""
    return st.lists(st.integers(0, 5), min_size=1, max_size=300).map(lambda xs: np.array(xs, dtype=np.uint8))


def lines_of(ids: np.ndarray) -> list[list[int]]:
    """What each line's row must predict: its tokens and its newline (no row for a final empty line)."""
    text = ids.tolist()
    out, line = [], []
    for t in text:
        line.append(t)
        if t == NL:
            out.append(line)
            line = []
    if line:
        out.append(line)
    return out


def rows_of(batches: LineBatches, i: int) -> list[tuple[list[int], list[int]]]:
    x, y = batches.get(i)
    rows = []
    for xr, yr in zip(x.tolist(), y.tolist(), strict=True):
        n = sum(t != IGNORE for t in yr)
        assert all(t == IGNORE for t in yr[n:])  # padding only after the line: the mask covers exactly it
        assert all(t == 0 for t in xr[n:])
        rows.append((xr[:n], yr[:n]))
    return rows


@settings(max_examples=150, deadline=None)
@given(
    ids=id_streams(),
    batch=st.integers(1, 9),
    seq_len=st.integers(1, 12),
    seed=st.integers(0, 3),
    epoch=st.integers(0, 2),
)
def test_every_line_once_per_epoch_never_crossing_a_boundary(ids, batch, seq_len, seed, epoch):
    lines = lines_of(ids)
    batches = LineBatches(ids, NL, batch, seq_len, seed=seed)
    batches.shuffle(epoch)
    seen = []
    for i in range(len(batches)):
        rows = rows_of(batches, i)
        assert 1 <= len(rows) <= batch
        assert sum(len(y) for _, y in rows) == batches.predicted(i)
        for x, y in rows:
            assert 1 <= len(y) <= seq_len
            assert x[1:] == y[:-1]  # inputs are the targets shifted by one
            assert NL not in y[:-1]  # a row never crosses a line's end: a newline can only be its last target
            seen.append((x, y))
    # Joined in order, the pieces of the rows give every line exactly once.
    pieces = sorted(seen)
    expected = []
    for line in lines:
        prev = [NL] + line
        for k in range(0, len(line), seq_len):
            expected.append((prev[k : k + min(seq_len, len(line) - k)], line[k : k + seq_len]))
    assert pieces == sorted(expected)


@settings(max_examples=50, deadline=None)
@given(ids=id_streams(), seq_len=st.integers(1, 12))
def test_spans_start_after_a_newline_or_cut(ids, seq_len):
    starts, lengths = line_spans(ids, NL, seq_len)
    ext = np.concatenate([[NL], ids])
    ends = set((starts + lengths).tolist())
    for s in starts.tolist():
        assert ext[s] == NL or s in ends  # a line's start, or where the previous piece of a long line ended
    assert lengths.sum() == len(ids)  # every token predicted once


def test_shards_split_each_batch():
    ids = np.array([1, 2, 0, 3, 0, 4, 4, 0, 5, 0] * 4, dtype=np.uint8)
    whole = LineBatches(ids, NL, 4, 8, seed=1)
    parts = [LineBatches(ids, NL, 4, 8, shard=(r, 2), seed=1) for r in range(2)]
    for i in range(len(whole)):
        rows = sorted(rows_of(whole, i))
        assert sorted(rows_of(parts[0], i) + rows_of(parts[1], i)) == rows


@pytest.mark.parametrize("cell", CELLS)
def test_padding_changes_no_line_loss(cell):
    """Each row of a padded batch from a reset state scores as the line alone: true for every cell."""
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=6, cell=cell, hidden_size=16, embed_size=8, layers=2, dropout=0.0)).eval()
    ids = np.array([1, 2, 3, 0, 4, 0, 5, 5, 5, 5, 1, 0], dtype=np.uint8)
    batches = LineBatches(ids, NL, 8, 16, seed=None)
    x, y = batches.get(0)
    with torch.no_grad():
        logits, _ = model(x, model.init_state(x.shape[0]))
        batched = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)
        for r in range(x.shape[0]):
            n = int((y[r] != IGNORE).sum())
            alone, _ = model(x[r : r + 1, :n], model.init_state(1))
            expected = F.cross_entropy(alone[0], y[r, :n], reduction="none")
            torch.testing.assert_close(batched[r, :n], expected, rtol=1e-5, atol=1e-5)
        result = evaluate_lines(model, ids, len(ids), 2, 16, torch.device("cpu"), newline=NL)
    assert result.tokens == len(ids)
    assert result.nats == pytest.approx(float(batched[y != IGNORE].sum()), rel=1e-5)


@pytest.fixture(scope="module")
def names_run(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny LSTM trained with --items lines on generated names; (names file, run folder)."""
    root = tmp_path_factory.mktemp("names")
    names = root / "names.txt"
    names.write_text(corpora.names(3000), encoding="utf-8")
    args = ["--items", "lines", *SMALL, "--batch-size", "32", "--max-steps", "150", "--eval-every", "75"]
    result = charrnn(
        "train",
        str(names),
        *args,
        "--lr",
        "1e-2",
        "--warmup-steps",
        "20",
        "--precision",
        "fp32",
        "--out",
        str(root / "run"),
        cwd=root,
        timeout=900,  # a busy shared CPU
    )
    assert result.returncode == 0, result.stderr
    return names, root / "run"


def test_names_train_sample_novelty_eval(names_run, tmp_path):
    names, run = names_run
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["val_loss"] < records[0]["train_loss"] - 0.5
    sampled = charrnn("sample", "-c", str(run), "--num-samples", "20", "--seed", "3", "--length", "40", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    items = sampled.stdout.split("\n")
    assert len(items) == 21 and items[-1] == ""  # 20 lines, each ended by its newline
    assert all(0 < len(item) <= 40 for item in items[:-1])
    assert sum(item[:1].isupper() for item in items[:-1]) >= 15  # they look like the names
    (tmp_path / "s.txt").write_text(sampled.stdout + "Nialard\n", encoding="utf-8")  # one known line of the corpus
    found = charrnn_here(
        "novelty", str(tmp_path / "s.txt"), "--corpus", str(names), "--items", "lines", "--json", cwd=tmp_path
    )
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    expected = sum(line in set(names.read_text().splitlines()) for line in items[:-1]) + 1
    assert report["items"] == 21 and report["items_in_corpus"] == expected
    evaluated = charrnn_here("eval", str(names), "-c", str(run), "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["tokens"] == len(names.read_text())  # every line and its newline


def test_prime_and_beam_stay_in_one_item(names_run, tmp_path):
    _, run = names_run
    primed = charrnn_here("sample", "-c", str(run), "-N", "3", "--prime", "Th", "--seed", "1", cwd=tmp_path)
    assert primed.returncode == 0, primed.stderr
    assert [line[:2] for line in primed.stdout.splitlines()] == ["Th"] * 3
    beam = charrnn_here("sample", "-c", str(run), "--beam", "3", "--length", "30", cwd=tmp_path)
    assert beam.returncode == 0 and beam.stdout.count("\n") == 1 and beam.stdout.endswith("\n"), beam.stderr


def test_resume_keeps_items(names_run, tmp_path):
    _, run = names_run
    resumed = charrnn_here("train", "--resume", str(run), "--max-steps", "170", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    saved = torch.load(run / "last.pt", weights_only=True)
    assert saved["data_config"]["items"] == "lines" and saved["cursor"]["step"] == 170


@pytest.mark.slow
def test_items_lines_with_sentencepiece(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text(corpora.names(1500, seed=1), encoding="utf-8")
    run = tmp_path / "run"
    args = ["--items", "lines", "--tokenizer", "bpe", "--vocab-size", "300", *SMALL, "--max-steps", "30"]
    trained = charrnn("train", str(names), *args, "--out", str(run), "--cache-dir", str(tmp_path / "c"), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    sampled = charrnn_here(
        "sample", "-c", str(run), "-N", "5", "--seed", "1", "--length", "30", "-f", "jsonl", cwd=tmp_path
    )
    assert sampled.returncode == 0, sampled.stderr
    texts = [json.loads(line)["text"] for line in sampled.stdout.splitlines()]  # raw bytes of a barely trained
    assert len(texts) == 5 and not any("\n" in t for t in texts)  # model may hold a \r: jsonl shows it as is


@pytest.mark.slow
def test_nproc_two_with_lines(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text(corpora.names(600, seed=2), encoding="utf-8")
    args = ["--items", "lines", *SMALL, "--max-steps", "4", "--eval-every", "4", "--nproc", "2", "--device", "cpu"]
    trained = charrnn("train", str(names), *args, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["cursor"]["step"] == 4


def test_python_api_samples_items(names_run):
    import charrnn

    _, run = names_run
    samples = charrnn.load(run, device="cpu").samples(num_samples=4, seed=2, length=40)
    assert len(samples) == 4 and all(s.text and "\n" not in s.text for s in samples)
