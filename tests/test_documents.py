"""Documents: where they start in the cache, and DocBatches, which reads each from the reset state
after a newline (charrnn.data)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn import data
from charrnn.config import DataConfig
from charrnn.data import IGNORE, DocBatches, load_corpus
from charrnn.errors import CharRNNError

NL = 0  # the newline's id in these tests; the documents' own ids are 1 and up


def documents(lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Ids that number every token 1, 2, ... across documents of these lengths, and the documents' starts."""
    ids = np.arange(1, sum(lengths) + 1, dtype=np.int64)
    return ids, np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def read_all(batches: DocBatches) -> list[tuple[int, int, int, bool]]:
    """Every (row, input, target, reset-before-this-window) of a pass whose target is real."""
    out = []
    for i in range(len(batches)):
        x, y = batches.get(i)
        resets = batches.resets(i)
        assert int((y != IGNORE).sum()) == batches.predicted(i)
        for r in range(x.shape[0]):
            for t in range(x.shape[1]):
                if y[r, t] != IGNORE:
                    out.append((r, int(x[r, t]), int(y[r, t]), bool(resets[r]) and t == 0))
    return out


@settings(deadline=None, max_examples=60)
@given(
    lengths=st.lists(st.integers(1, 60), min_size=1, max_size=12),
    batch_size=st.integers(1, 4),
    seq_len=st.integers(1, 16),
)
def test_every_token_is_predicted_once_from_its_document(lengths, batch_size, seq_len):
    ids, starts = documents(lengths)
    try:
        batches = DocBatches(ids, starts, NL, batch_size, seq_len, allow_partial=True)
    except CharRNNError:
        assert sum(-(-n // seq_len) for n in lengths) < batch_size  # too short for a window per row
        return
    seen = read_all(batches)
    assert sorted(target for _, _, target, _ in seen) == ids.tolist()  # each token once
    first = set((starts + 1).tolist())  # the ids that open a document
    for _, x, y, reset in seen:
        # A document's first token is predicted from a newline, the others from the token before;
        # a row's state is reset only where a document begins.
        assert x == (NL if y in first else y - 1)
        assert not reset or y in first


@settings(deadline=None, max_examples=30)
@given(lengths=st.lists(st.integers(1, 60), min_size=4, max_size=12), seq_len=st.integers(1, 16))
def test_a_document_that_opens_a_window_resets_its_row(lengths, seq_len):
    ids, starts = documents(lengths)
    batches = DocBatches(ids, starts, NL, 2, seq_len, allow_partial=True)
    for i in range(len(batches)):
        x, y = batches.get(i)
        for r, reset in enumerate(batches.resets(i).tolist()):
            if y[r, 0] != IGNORE and int(y[r, 0]) - 1 in starts.tolist():
                assert reset and x[r, 0] == NL


def test_shards_take_their_rows():
    ids, starts = documents([50, 7, 30, 90, 12, 40])
    whole = DocBatches(ids, starts, NL, 4, 8)
    halves = [DocBatches(ids, starts, NL, 4, 8, shard=(r, 2)) for r in range(2)]
    for i in range(len(whole)):
        assert (np.concatenate([h.get(i)[0] for h in halves]) == whole.get(i)[0].numpy()).all()
        assert (np.concatenate([h.resets(i) for h in halves]) == whole.resets(i).numpy()).all()
        assert all(h.predicted(i) == whole.predicted(i) for h in halves)


def test_few_documents_are_cut_at_line_starts():
    # One document of lines 9 tokens long (8 letters and a newline): pieces of about 4 windows of 8.
    line = [1, 2, 3, 4, 5, 6, 7, 8, NL]
    ids = np.array(line * 40, dtype=np.int64)
    batches = DocBatches(ids, np.array([0]), NL, 2, 8, pieces=4)
    assert len(batches.seg_start) > 4
    assert all(ids[s - 1] == NL for s in batches.seg_start[1:].tolist())  # each piece opens a line
    assert (batches.seg_len <= 32).all()
    whole = DocBatches(ids, np.array([0]), NL, 2, 8)  # without pieces: the one document
    assert len(whole.seg_start) == 1


def test_the_cache_records_where_files_start(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    texts = ["first file\n", "second one\n", "third and last file\n" * 3]
    for i, text in enumerate(texts):
        (folder / f"{i}.txt").write_text(text)
    corpus = load_corpus(DataConfig(sources=[str(folder)], cache_dir=str(tmp_path / "cache"), val_frac=0.2))
    n_train = len(corpus.train.ids)
    assert corpus.train.starts.tolist() == [0, 11, 22][: sum(s < n_train for s in (0, 11, 22))]
    assert corpus.val.starts.tolist() == []  # the split falls inside the last file


def test_the_same_bytes_cut_into_other_files_are_another_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("one document\n" * 20)
    (tmp_path / "b.txt").write_text("another one\n" * 20)
    (tmp_path / "ab.txt").write_text("one document\n" * 20 + "another one\n" * 20)
    cache = str(tmp_path / "cache")
    two = load_corpus(DataConfig(sources=[str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], cache_dir=cache))
    one = load_corpus(DataConfig(sources=[str(tmp_path / "ab.txt")], cache_dir=cache))
    assert two.sha256 == one.sha256  # the same bytes...
    assert two.train.starts.tolist() == [0, 260] and one.train.starts.tolist() == [0]  # ...other documents


def test_openings_read_file_starts_or_line_starts(tmp_path):
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.txt")
        files[-1].write_text(f"= Title {i} =\nbody\n")
    assert data.openings(files, "utf-8", 0) == [f"= Title {i} =\nbody\n" for i in range(3)]
    one = tmp_path / "one.txt"
    one.write_text("".join(f"line {i}\n" for i in range(100)))
    found = data.openings([one], "utf-8", len(one.read_text()), rows=4, length=8)
    assert [text.split("\n")[0] for text in found] == ["line 1", "line 26", "line 51", "line 76"]


def test_too_short_for_a_batch_is_refused():
    ids, starts = documents([3, 3])
    with pytest.raises(CharRNNError, match="too short"):
        DocBatches(ids, starts, NL, 4, 8)
