"""Tokenizers behind one interface: characters, bytes and SentencePiece (BPE or unigram).

Every tokenizer maps text to integer ids and back, and describes each id by the UTF-8 bytes
it stands for (`pieces`), so that streaming decoding and exact round trips work the same way
for all of them. `to_state()` returns plain JSON-able data that travels inside checkpoints.
"""

from __future__ import annotations

import base64
import codecs
import io
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from charrnn.errors import CharRNNError


class Tokenizer(Protocol):
    kind: str
    pieces: list[bytes]  # the UTF-8 bytes each id stands for

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str, unknown: str = "error") -> np.ndarray: ...

    def to_state(self) -> dict: ...


def decode(tokenizer: Tokenizer, ids: Iterable[int]) -> str:
    """Ids back to text; invalid UTF-8 (a half-finished byte sequence) becomes U+FFFD."""
    pieces = tokenizer.pieces
    return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")


class StreamDecoder:
    """Turns ids into text as they arrive, holding back incomplete UTF-8 sequences."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.pieces = tokenizer.pieces
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, ids: Iterable[int]) -> str:
        return self.utf8.decode(b"".join(self.pieces[i] for i in ids))

    def flush(self) -> str:
        return self.utf8.decode(b"", final=True)


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


class CharTokenizer:
    """One id per Unicode character seen in the corpus; ids follow code-point order."""

    kind = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        if not chars:
            raise CharRNNError("the character vocabulary is empty; the corpus has no text")
        self.chars = list(chars)
        self.pieces = [c.encode("utf-8", errors="surrogatepass") for c in self.chars]
        codes = np.array([ord(c) for c in self.chars], dtype=np.int64)
        # Dense code point -> id table: one vectorized gather encodes a whole chunk.
        self._table = np.full(int(codes.max()) + 2, -1, dtype=np.int64)
        self._table[codes] = np.arange(len(codes))

    @classmethod
    def build(cls, chunks: Iterable[str]) -> CharTokenizer:
        seen = np.zeros(0, dtype=np.uint32)
        for chunk in chunks:
            seen = np.union1d(seen, np.unique(_codepoints(chunk)))
        return cls([chr(c) for c in seen.tolist()])

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str, unknown: str = "error") -> np.ndarray:
        codes = _codepoints(text).astype(np.int64)
        codes = np.minimum(codes, len(self._table) - 1)  # the last table slot is always -1
        ids = self._table[codes]
        missing = ids < 0
        if missing.any():
            if unknown == "skip":
                return ids[~missing]
            names = sorted(set(np.asarray(list(text))[missing].tolist()))
            shown = ", ".join(repr(c) for c in names[:10]) + (" ..." if len(names) > 10 else "")
            raise CharRNNError(
                f"{len(names)} character(s) not in the model's vocabulary: {shown}; remove them or pass --unknown skip"
            )
        return ids

    def to_state(self) -> dict:
        return {"kind": self.kind, "chars": "".join(self.chars)}


class ByteTokenizer:
    """The 256 byte values of the UTF-8 encoding: nothing is ever unknown."""

    kind = "byte"
    pieces = [bytes([b]) for b in range(256)]

    @property
    def vocab_size(self) -> int:
        return 256

    def encode(self, text: str, unknown: str = "error") -> np.ndarray:
        data = text.encode("utf-8", errors="surrogatepass")
        return np.frombuffer(data, dtype=np.uint8).astype(np.int64)

    def to_state(self) -> dict:
        return {"kind": self.kind}


# SentencePiece settings for an exact round trip: no normalization, whitespace kept as is,
# no dummy prefix, newline and tab as pieces of their own, byte fallback for everything else.
_SP_OPTIONS = dict(
    normalization_rule_name="identity",
    remove_extra_whitespaces=False,
    add_dummy_prefix=False,
    byte_fallback=True,
    user_defined_symbols=["\n", "\t"],
    allow_whitespace_only_pieces=True,
    character_coverage=0.9995,
    unk_surface="",
    bos_id=-1,
    eos_id=-1,
    max_sentence_length=1 << 15,
    input_sentence_size=2_000_000,
    shuffle_input_sentence=True,
    train_extremely_large_corpus=False,
    minloglevel=2,
)


class SentencePieceTokenizer:
    """A SentencePiece BPE or unigram model trained on the corpus, its proto kept in memory."""

    def __init__(self, kind: str, model_proto: bytes) -> None:
        import sentencepiece as spm

        self.kind = kind
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.pieces = [self._piece_bytes(i) for i in range(self.sp.get_piece_size())]

    def _piece_bytes(self, i: int) -> bytes:
        sp = self.sp
        if sp.is_byte(i):
            return bytes([int(sp.id_to_piece(i)[1:-1], 16)])  # "<0xAB>"
        if sp.is_control(i) or sp.is_unknown(i):
            return b""
        return sp.id_to_piece(i).replace("\u2581", " ").encode("utf-8")

    @classmethod
    def train(cls, kind: str, lines: Iterable[str], vocab_size: int) -> SentencePieceTokenizer:
        import sentencepiece as spm

        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines),
                model_writer=model,
                model_type=kind,
                vocab_size=vocab_size,
                hard_vocab_limit=False,
                **_SP_OPTIONS,
            )
        except RuntimeError as e:
            raise CharRNNError(f"SentencePiece could not train a {kind} model: {e}") from None
        return cls(kind, model.getvalue())

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def encode(self, text: str, unknown: str = "error") -> np.ndarray:
        return np.asarray(self.sp.encode(text), dtype=np.int64)

    def to_state(self) -> dict:
        return {"kind": self.kind, "model_proto": base64.b64encode(self.model_proto).decode()}


def from_state(state: dict) -> Tokenizer:
    kind = state.get("kind")
    if kind == "char":
        return CharTokenizer(list(state["chars"]))
    if kind == "byte":
        return ByteTokenizer()
    if kind in ("bpe", "unigram"):
        return SentencePieceTokenizer(kind, base64.b64decode(state["model_proto"]))
    raise CharRNNError(f"unknown tokenizer kind {kind!r} in checkpoint")
