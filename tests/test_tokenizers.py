from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn import tokenizers
from charrnn.errors import CharRNNError
from charrnn.tokenizers import ByteTokenizer, CharTokenizer, SentencePieceTokenizer, StreamDecoder, decode

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n\tAll:  Speak, speak.  \n"


@pytest.fixture(scope="module")
def bpe(shakespeare_head) -> SentencePieceTokenizer:
    lines = shakespeare_head.read_text(encoding="utf-8").split("\n")
    return SentencePieceTokenizer.train("bpe", lines, 400)


@given(st.text(alphabet=st.sampled_from(sorted(set(TEXT + "日本語é"))), max_size=300))
def test_char_round_trip_over_its_vocabulary(text):
    tok = CharTokenizer.build([TEXT + "日本語é"])
    assert decode(tok, tok.encode(text)) == text


@given(st.text(max_size=200))
def test_byte_round_trip_for_any_unicode(text):
    tok = ByteTokenizer()
    assert decode(tok, ByteTokenizer().encode(text)) == text
    assert tok.encode(text).max(initial=0) < 256


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=120))
def test_sentencepiece_round_trip_for_any_unicode(bpe, text):
    assert decode(bpe, bpe.encode(text)) == text


def test_sentencepiece_keeps_whitespace_and_newlines(bpe):
    assert decode(bpe, bpe.encode(TEXT)) == TEXT
    assert len(bpe.encode(TEXT)) < len(TEXT)  # it does merge characters


@pytest.mark.parametrize("kind", ["char", "byte", "bpe"])
def test_state_rebuilds_the_same_tokenizer(kind, bpe):
    tok = {"char": CharTokenizer.build([TEXT]), "byte": ByteTokenizer(), "bpe": bpe}[kind]
    again = tokenizers.from_state(tok.to_state())
    assert again.pieces == tok.pieces
    assert (again.encode(TEXT) == tok.encode(TEXT)).all()


def test_char_ids_follow_code_point_order_and_unknowns_are_named():
    tok = CharTokenizer.build(["banana"])
    assert tok.chars == ["a", "b", "n"]
    with pytest.raises(CharRNNError, match="'z'"):
        tok.encode("bz")
    assert decode(tok, tok.encode("bzaz", unknown="skip")) == "ba"


def test_stream_decoder_holds_back_partial_utf8():
    tok = ByteTokenizer()
    ids = tok.encode("é日")
    stream = StreamDecoder(tok)
    parts = [stream.feed([i]) for i in ids] + [stream.flush()]
    assert parts[0] == "" and "".join(parts) == "é日"
