"""SentencePiece encoding spread over worker processes gives exactly the single-threaded ids."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from charrnn import data, tokenizers
from charrnn.config import DataConfig
from charrnn.errors import CharRNNError
from charrnn.tokenizers import SPACE_MARK, SentencePieceTokenizer, sentences

WORDS = [
    "the",
    "king",
    "of",
    "日本語",
    "の",
    "文章",
    "é",
    "\U0001f600",
    SPACE_MARK,
    "a" + SPACE_MARK + "b",
    "\t",
    "  ",
    "x",
]


def generated_text(n_chars: int, seed: int = 0) -> str:
    """Lines of mixed words: short and empty ones, and some far longer than a sentence."""
    rng = random.Random(seed)
    lines: list[str] = []
    while sum(map(len, lines)) < n_chars:
        n_words = rng.choice([0, 1, 5, 12, 40, 3 * tokenizers.MAX_SENTENCE])
        lines.append(" ".join(rng.choice(WORDS) for _ in range(n_words)) + "\n")
    return "".join(lines)


def cut(text: str, n_blocks: int, seed: int = 1) -> list[str]:
    """Blocks cut anywhere: mid-line and mid-sentence too, as a line longer than a read block is."""
    edges = sorted(random.Random(seed).sample(range(1, len(text)), n_blocks - 1))
    return [text[a:b] for a, b in zip([0, *edges], [*edges, len(text)], strict=True)]


def reference_encode(tok: SentencePieceTokenizer, block: str) -> np.ndarray:
    """The straightforward encoding: one sentence at a time, on one thread."""
    marks = [tok.sp.piece_to_id(f"<0x{b:02X}>") for b in SPACE_MARK.encode()]
    ids: list[int] = []
    for part in tokenizers._SENTENCE.findall(block):
        ids.extend(marks if part == SPACE_MARK else tok.sp.encode(part))
    return np.array(ids, dtype=np.int64)


@pytest.fixture(scope="module")
def text() -> str:
    return generated_text(600_000)


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def tok(request, text) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train(request.param, sentences(text[:200_000]), 400)


def test_workers_give_the_single_threaded_ids(tok, text):
    blocks = cut(text, 24)
    assert any(len(s) > tokenizers.MAX_SENTENCE for s in text.splitlines())  # long lines are cut
    got = list(tok.encode_blocks(blocks, workers=2))
    assert len(got) == len(blocks)
    for block, ids in zip(blocks, got, strict=True):
        want = reference_encode(tok, block)
        assert np.array_equal(ids, want)
        assert np.array_equal(tok.encode(block), want)
    assert tokenizers.decode(tok, np.concatenate(got)) == text


def test_one_block_is_encoded_in_process(tok, text):
    block = text[:50_000]
    (ids,) = tok.encode_blocks([block], workers=2)
    assert np.array_equal(ids, reference_encode(tok, block))


def test_blocks_in_flight_are_bounded(tok):
    pulled = 0

    def blocks():
        nonlocal pulled
        for i in range(40):
            pulled += 1
            yield generated_text(2_000, seed=i)

    workers = 2
    for done, _ in enumerate(tok.encode_blocks(blocks(), workers=workers), start=1):
        assert pulled - done <= 2 * workers  # memory stays flat in the stream's length
    assert done == pulled == 40


def test_a_worker_error_reaches_the_caller(tok):
    blocks = ["fine text\n"] * 5 + ["a lone surrogate \ud800\n"] + ["more\n"] * 5
    with pytest.raises(CharRNNError, match="lone surrogates"):
        list(tok.encode_blocks(blocks, workers=2))


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_cached_ids_match_a_single_threaded_encode(tmp_path, monkeypatch, text, kind):
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(data, "READ_BLOCK", 32_000)  # many blocks, some cut inside a long line
    monkeypatch.setattr(tokenizers, "available_cores", lambda: 2)  # workers even on a 1-core machine
    cfg = DataConfig(sources=[str(path)], tokenizer=kind, vocab_size=400, cache_dir=str(tmp_path / "cache"))
    corpus = data.load_corpus(cfg)
    tok = corpus.tokenizer
    n_train = len(text) - int(len(text) * cfg.val_frac)
    want = np.concatenate(
        [reference_encode(tok, c) for s in data._split_chars(data.read_documents([path]), n_train) for _, c in s]
    )
    dtype = data.id_dtype(tok.vocab_size)
    (meta_path,) = (tmp_path / "cache").glob("*.json")
    meta = json.loads(meta_path.read_text())
    stored = np.concatenate([np.fromfile(meta_path.with_suffix(f".{s}.bin"), dtype=dtype) for s in ("train", "val")])
    assert np.array_equal(stored, want.astype(dtype))
    assert meta["train"][1] + meta["val"][1] == len(text)
    assert meta["train"][0] + meta["val"][0] == len(want)
