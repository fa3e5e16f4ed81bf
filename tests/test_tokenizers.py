from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn import data, tokenizers
from charrnn.config import TOKENIZERS
from charrnn.errors import CharRNNError
from charrnn.registry import tokenizer_class
from charrnn.tokenizers import ByteTokenizer, CharTokenizer, SentencePieceTokenizer, StreamDecoder, decode, sentences

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n\tAll:  Speak, speak.  \n"


# Characters SentencePiece treats specially: its space mark, line and paragraph separators, controls.
AWKWARD = "\u2581 \t\n\r\x0b\x0c\x1c\x85\u2028\u3000\x00\ufeff"


def _char_tokenizer(*chunks: str) -> CharTokenizer:
    """The char tokenizer of these chunks, as data.scan and CharTokenizer.fit build it."""
    charset = tokenizers.CharSet()
    for chunk in chunks:
        charset.add(chunk)
    return CharTokenizer.fit("char", SimpleNamespace(chars=charset), 0)


@pytest.fixture(scope="module")
def bpe(corpus_file) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train("bpe", sentences(corpus_file.read_text(encoding="utf-8")), 400)


@pytest.fixture(scope="module")
def unigram(corpus_file) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train("unigram", sentences(corpus_file.read_text(encoding="utf-8")), 400)


@given(st.text(alphabet=st.sampled_from(sorted(set(TEXT + "日本語é"))), max_size=300))
def test_char_round_trip_over_its_vocabulary(text):
    tok = _char_tokenizer(TEXT + "日本語é")
    assert decode(tok, tok.encode(text)) == text


@given(st.text(max_size=200))
def test_byte_round_trip_for_any_unicode(text):
    tok = ByteTokenizer()
    assert decode(tok, ByteTokenizer().encode(text)) == text
    assert tok.encode(text).max(initial=0) < 256


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=120) | st.text(alphabet=st.sampled_from(AWKWARD + "ab"), max_size=40))
@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_sentencepiece_round_trip_for_any_unicode(kind, bpe, unigram, text):
    tok = {"bpe": bpe, "unigram": unigram}[kind]
    assert decode(tok, tok.encode(text)) == text


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_sentencepiece_keeps_whitespace_and_newlines(kind, bpe, unigram):
    tok = {"bpe": bpe, "unigram": unigram}[kind]
    assert decode(tok, tok.encode(TEXT)) == TEXT
    assert len(tok.encode(TEXT)) < len(TEXT)  # it does merge characters


def test_long_lines_round_trip(bpe):
    text = ("speak, " * 2000).strip() + "\n" + "x" * 5000
    assert decode(bpe, bpe.encode(text)) == text


def test_a_vocabulary_smaller_than_the_alphabet_falls_back_to_bytes(chinese_file, caplog):
    text = chinese_file.read_text(encoding="utf-8")
    assert len(set(text)) > 1000  # SentencePiece alone refuses this vocabulary size
    with caplog.at_level("INFO", logger="charrnn"):
        tok = SentencePieceTokenizer.train("bpe", sentences(text), 500)
    assert "spelled as UTF-8 bytes" in caplog.text
    assert tok.vocab_size <= 500
    ids = tok.encode(text)
    assert decode(tok, ids) == text
    assert len(ids) < len(text.encode())  # common characters are pieces, not bytes


@pytest.mark.parametrize("kind", TOKENIZERS)
def test_state_rebuilds_the_same_tokenizer(kind, bpe, unigram):
    tok = {"char": _char_tokenizer(TEXT), "byte": ByteTokenizer(), "bpe": bpe, "unigram": unigram}[kind]
    again = tokenizers.from_state(tok.to_state())
    assert again.pieces == tok.pieces
    assert (again.encode(TEXT) == tok.encode(TEXT)).all()
    assert again.decode(again.encode(TEXT)) == TEXT and type(again) is tokenizer_class(kind)


@pytest.mark.parametrize("kind", TOKENIZERS)
def test_each_registered_tokenizer_fits_on_a_scan(kind, tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TEXT * 40, encoding="utf-8")
    tok = tokenizer_class(kind).fit(kind, data.scan([path], "strict", kind), 300)
    assert tok.kind == kind and tok.decode(tok.encode(TEXT)) == TEXT


def test_an_unknown_kind_in_a_checkpoint_is_an_error():
    with pytest.raises(CharRNNError, match="unknown tokenizer kind 'morse'"):
        tokenizers.from_state({"kind": "morse"})


@pytest.mark.parametrize("extra", ["", "é"])  # the ASCII fast path and the general one
def test_char_ids_follow_code_point_order_and_unknowns_are_named(extra):
    tok = _char_tokenizer("banana" + extra, "日")
    assert tok.chars == ["a", "b", "n", *extra, "日"]
    assert tok.encode("nab" + extra).tolist() == [2, 0, 1] + ([3] if extra else [])
    with pytest.raises(CharRNNError, match="'z'"):
        tok.encode("bz" + extra)
    assert decode(tok, tok.encode("bzaz" + extra, unknown="skip")) == "ba" + extra


def test_char_set_collects_across_chunks():
    charset = tokenizers.CharSet()
    for chunk in ["abc", "日本", "cab\n", "\U0001f600 x"]:
        charset.add(chunk)
    assert charset.chars() == sorted(set("abc日本\n\U0001f600 x"))


def test_stream_decoder_holds_back_partial_utf8():
    tok = ByteTokenizer()
    ids = tok.encode("é日")
    stream = StreamDecoder(tok)
    parts = [stream.feed([i]) for i in ids] + [stream.flush()]
    assert parts[0] == "" and "".join(parts) == "é日"
