from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn import data
from charrnn.config import DataConfig
from charrnn.data import BPTTBatches, id_dtype, load_corpus
from charrnn.errors import CharRNNError
from charrnn.tokenizers import decode


@settings(deadline=None)  # the machine is shared: wall-clock deadlines would make this flaky
@given(
    n=st.integers(50, 3000),
    batch_size=st.integers(1, 8),
    seq_len=st.integers(1, 40),
)
def test_batches_are_contiguous_shifted_streams(n, batch_size, seq_len):
    ids = np.arange(n, dtype=np.int64)
    if n // batch_size < seq_len + 1:
        with pytest.raises(CharRNNError, match="too short"):
            BPTTBatches(ids, batch_size, seq_len)
        return
    batches = BPTTBatches(ids, batch_size, seq_len)
    streams = [[] for _ in range(batch_size)]
    for i in range(len(batches)):
        x, y = batches.get(i)
        assert x.shape == (batch_size, seq_len)
        assert (y == x + 1).all()  # targets are the inputs shifted by one
        for row in range(batch_size):
            streams[row].extend(x[row].tolist())
    stream_len = n // batch_size
    for row, seen in enumerate(streams):
        # Each stream continues across batches with no gap and no overlap.
        start = row * stream_len
        assert seen == list(range(start, start + len(seen)))
        assert len(seen) == len(batches) * seq_len <= stream_len - 1


def test_shards_split_the_rows():
    ids = np.arange(1000)
    whole = BPTTBatches(ids, 4, 10)
    halves = [BPTTBatches(ids, 4, 10, shard=(r, 2)) for r in range(2)]
    x, _ = whole.get(3)
    assert (np.concatenate([h.get(3)[0] for h in halves]) == x.numpy()).all()


def test_smallest_id_dtype():
    assert id_dtype(65) == np.uint8 and id_dtype(256) == np.uint8
    assert id_dtype(257) == np.uint16 and id_dtype(70000) == np.uint32


def test_split_and_cache(tmp_path, corpus_file):
    cfg = DataConfig(sources=[str(corpus_file)], cache_dir=str(tmp_path))
    corpus = load_corpus(cfg)
    text = corpus_file.read_text(encoding="utf-8")
    assert corpus.train.n_chars + corpus.val.n_chars == len(text)
    assert corpus.val.n_chars == int(len(text) * 0.1)
    assert corpus.train.ids.dtype == np.uint8 and isinstance(corpus.train.ids, np.memmap)
    assert "".join(corpus.tokenizer.chars[i] for i in corpus.val.ids[:50]) == text[corpus.train.n_chars :][:50]
    files = sorted(p.name for p in tmp_path.iterdir())
    again = load_corpus(cfg)  # cache hit: no new files
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    assert (again.train.ids == corpus.train.ids).all()


def test_cache_is_invalidated_when_the_corpus_changes(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("abc\n" * 100)
    cfg = DataConfig(sources=[str(path)], cache_dir=str(tmp_path / "cache"))
    first = load_corpus(cfg)
    path.write_text("xyz\n" * 100)
    second = load_corpus(cfg)
    assert first.sha256 != second.sha256
    assert second.tokenizer.chars == ["\n", "x", "y", "z"]


def test_folder_and_stdin_sources(tmp_path, monkeypatch):
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("bbbb\n")
    (folder / "sub" / "a.txt").write_text("aaaa\n")
    (folder / "image.bin").write_bytes(b"\x00\x01\x02")  # binary files below a folder are skipped
    (folder / ".hidden").write_text("hidden\n")
    corpus = load_corpus(DataConfig(sources=[str(folder)], cache_dir=str(tmp_path / "c"), val_frac=0.2))
    assert corpus.tokenizer.chars == ["\n", "a", "b"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin\n" * 20)))
    corpus = load_corpus(DataConfig(sources=["-"], cache_dir=str(tmp_path / "c2")))
    assert "".join(corpus.tokenizer.chars) == "\n dfimnorst"
    assert not list((tmp_path / "c2").glob("stdin-*"))  # the spooled copy is removed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"hello \xff world", r"not valid UTF-8 \(byte offset 6\)"),
        (b"abc\x00def", "looks binary"),
    ],
)
def test_bad_corpora_are_named(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(CharRNNError, match=message):
        load_corpus(DataConfig(sources=[str(path)], cache_dir=str(tmp_path / "c")))


def test_encoding_errors_replace(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait\n".encode("latin-1") * 10)
    corpus = load_corpus(DataConfig(sources=[str(path)], cache_dir=str(tmp_path / "c"), encoding_errors="replace"))
    assert "\ufffd" in corpus.tokenizer.chars


def test_missing_source(tmp_path):
    with pytest.raises(CharRNNError, match="no such file"):
        load_corpus(DataConfig(sources=[str(tmp_path / "nope.txt")], cache_dir=str(tmp_path)))


@pytest.mark.parametrize("kind", ["char", "byte", "bpe", "unigram"])
def test_every_tokenizer_holds_out_the_same_validation_text(tmp_path, corpus_file, kind):
    # Bits per character compare across tokenizers only if they score the same characters.
    text = corpus_file.read_text(encoding="utf-8")
    cfg = DataConfig(sources=[str(corpus_file)], tokenizer=kind, vocab_size=400, cache_dir=str(tmp_path))
    corpus = load_corpus(cfg)
    n_train = len(text) - int(len(text) * 0.1)
    assert (corpus.train.n_chars, corpus.val.n_chars) == (n_train, len(text) - n_train)
    assert decode(corpus.tokenizer, corpus.val.ids) == text[n_train:]
    assert decode(corpus.tokenizer, corpus.train.ids) == text[:n_train]


def test_sentencepiece_sample_is_bounded_and_spread(tmp_path, monkeypatch):
    path = tmp_path / "c.txt"
    path.write_text("".join(f"line {i:06d}\n" for i in range(20_000)))  # 240 kB
    monkeypatch.setattr(data, "READ_BLOCK", 16_000)
    monkeypatch.setattr(data, "SP_SAMPLE_CHARS", 12_000)
    found = data.scan([path], "strict", "bpe")
    assert found.n_chars == 240_000
    assert 10_000 < sum(len(s) for s in found.sample) <= 12_000
    numbers = [int(s[5:]) for s in found.sample if len(s) == 11 and s.startswith("line ")]
    assert min(numbers) < 2_000 and max(numbers) > 18_000  # from every block, not just the head
