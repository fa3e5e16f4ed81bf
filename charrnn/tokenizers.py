"""Tokenizers behind one interface: characters, bytes and SentencePiece (BPE or unigram).

Every tokenizer maps text to integer ids and back, and describes each id by the UTF-8 bytes
it stands for (`pieces`), so that streaming decoding and exact round trips work the same way
for all of them. `to_state()` returns plain JSON-able data that travels inside checkpoints.

Each class is the tokenizer registry's implementation of one or more names (charrnn/registry.py):
`fit(kind, found, vocab_size)` builds it from one scan of the corpus (data.Scan: it asks for the
character set with `fit_chars`, for a sample of sentences with `fit_sample`), `from_state(state)`
restores it, and `char_level` says that each known character is one id.
"""

from __future__ import annotations

import base64
import codecs
import gc
import io
import itertools
import logging
import multiprocessing
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Protocol

import numpy as np

from charrnn.errors import CharRNNError
from charrnn.registry import TOKENIZER_INFO, tokenizer_class

if TYPE_CHECKING:
    from charrnn.data import Scan

log = logging.getLogger("charrnn")


class Tokenizer(Protocol):
    kind: str
    pieces: list[bytes]  # the UTF-8 bytes each id stands for

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str, unknown: str = "error") -> np.ndarray: ...  # integer ids, dtype varies

    def encode_blocks(self, blocks: Iterable[str], unknown: str = "error") -> Iterator[np.ndarray]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def to_state(self) -> dict: ...


def decode(tokenizer: Tokenizer, ids: Iterable[int]) -> str:
    """Ids back to text; invalid UTF-8 (a half-finished byte sequence) becomes U+FFFD."""
    pieces = tokenizer.pieces
    return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")


class _Base:
    """What every tokenizer class shares: what its fit needs, decoding through `pieces`, encoding a
    stream of blocks (one after another; a tokenizer that gains from more cores overrides it)."""

    fit_chars = False  # fit() needs the corpus's character set
    fit_sample = False  # fit() needs a sample of its sentences
    char_level = False  # each known character is one id
    pieces: list[bytes]

    def decode(self, ids: Iterable[int]) -> str:
        return decode(self, ids)

    def encode_blocks(self, blocks: Iterable[str], unknown: str = "error") -> Iterator[np.ndarray]:
        """encode() of each block, in order."""
        return (self.encode(block, unknown) for block in blocks)


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
    if text.isascii():  # O(1) check; one byte per character is 4x less to move
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


class CharSet:
    """The distinct characters of a text stream, collected chunk by chunk."""

    def __init__(self) -> None:
        self.ascii = b""
        self.other = np.zeros(0, dtype=bool)  # other[c]: code point c was seen

    def add(self, text: str) -> None:
        if text.isascii():
            # bytes.translate deletes the known characters at memory speed; what is left is new.
            new = text.encode("ascii").translate(None, self.ascii)
            if new:
                self.ascii = bytes(sorted(set(self.ascii) | set(new)))
            return
        seen = np.bincount(_codepoints(text)) > 0
        if len(seen) > len(self.other):
            seen[: len(self.other)] |= self.other
            self.other = seen
        else:
            self.other[: len(seen)] |= seen

    def chars(self) -> list[str]:
        codes = set(self.ascii) | set(np.flatnonzero(self.other).tolist())
        return [chr(c) for c in sorted(codes)]


class CharTokenizer(_Base):
    """One id per Unicode character seen in the corpus; ids follow code-point order (a vocabulary
    extended by fine-tuning keeps its ids and appends the new characters, see `extended`)."""

    kind = "char"
    fit_chars = char_level = True

    def __init__(self, chars: Sequence[str]) -> None:
        if not chars:
            raise CharRNNError("the character vocabulary is empty; the corpus has no text")
        self.chars = list(chars)
        self.pieces = [c.encode("utf-8", errors="surrogatepass") for c in self.chars]
        codes = np.array([ord(c) for c in self.chars], dtype=np.int64)
        # Dense code point -> id table: one vectorized gather encodes a whole chunk.
        self._table = np.full(int(codes.max()) + 2, -1, dtype=np.int32)
        self._table[codes] = np.arange(len(codes))
        # ASCII characters have the lowest code points, so their ids are below 128 and fit a
        # bytes.translate table; 255 marks a character not in the vocabulary. (A vocabulary extended
        # by fine-tuning appends characters: an ASCII one with an id past 254 takes the general path.)
        ascii_ids = np.full(256, 255, dtype=np.uint8)
        known = codes[codes < 128]
        known = known[self._table[known] < 255]
        ascii_ids[known] = self._table[known]
        self._ascii = ascii_ids.tobytes()

    @classmethod
    def fit(cls, kind: str, found: Scan, vocab_size: int) -> CharTokenizer:
        return cls(found.chars.chars())

    @classmethod
    def from_state(cls, state: dict) -> CharTokenizer:
        return cls(list(state["chars"]))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def extended(self, chars: Iterable[str]) -> CharTokenizer:
        """This vocabulary with the characters it lacks of `chars` appended in code-point order:
        every old character keeps its id."""
        known = set(self.chars)
        return CharTokenizer(self.chars + sorted(set(chars) - known))

    def encode(self, text: str, unknown: str = "error") -> np.ndarray:
        if text.isascii():
            ids = text.encode("ascii").translate(self._ascii)
            if b"\xff" not in ids:
                return np.frombuffer(bytearray(ids), dtype=np.uint8)
        codes = _codepoints(text)
        if len(codes) and codes.max() >= len(self._table):
            codes = np.minimum(codes, len(self._table) - 1)  # the last table slot is always -1
        ids = self._table.take(codes)
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


class ByteTokenizer(_Base):
    """The 256 byte values of the UTF-8 encoding: nothing is ever unknown."""

    kind = "byte"
    pieces = [bytes([b]) for b in range(256)]

    @classmethod
    def fit(cls, kind: str, found: Scan, vocab_size: int) -> ByteTokenizer:
        return cls()

    @classmethod
    def from_state(cls, state: dict) -> ByteTokenizer:
        return cls()

    @property
    def vocab_size(self) -> int:
        return 256

    def encode(self, text: str, unknown: str = "error") -> np.ndarray:
        return np.frombuffer(bytearray(text.encode("utf-8", errors="surrogatepass")), dtype=np.uint8)

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
    unk_surface="",
    bos_id=-1,
    eos_id=-1,
    max_sentence_length=1 << 15,  # bytes; sentences are at most MAX_SENTENCE characters
    minloglevel=2,
)
_SP_META_PIECES = 3 + 256  # <unk>, "\n", "\t" and the 256 byte pieces
_SP_COVERAGE = 0.9995  # SentencePiece's default character_coverage
SPACE_MARK = "\u2581"  # SentencePiece's stand-in for a space
MAX_SENTENCE = 2048  # characters; encoding cost grows faster than linearly with sentence length
_SP_BATCH = 4096  # sentences per call to SentencePiece
# Lines (newline kept) cut to MAX_SENTENCE characters, and each SPACE_MARK on its own.
_SENTENCE = re.compile(f"[^\n{SPACE_MARK}]{{1,{MAX_SENTENCE}}}\n?|\n|{SPACE_MARK}")


def sentences(text: str) -> list[str]:
    """The training sentences SentencePiece sees in text: the same cuts as encoding, no newlines."""
    return [s.rstrip("\n") for s in _SENTENCE.findall(text) if s != SPACE_MARK]


def _fit_characters(lines: list[str], vocab_size: int, kind: str) -> list[str]:
    """The lines, with characters that would not fit the vocabulary turned into sentence breaks.

    SentencePiece keeps every character among those covering 99.95% of the text (and accepts
    no coverage below 98%), and refuses a vocabulary smaller than that set: about 2,500
    characters for 63k characters of Chinese lyrics. With byte fallback the rarer characters
    are still encoded exactly, as their UTF-8 bytes; so train on the most frequent characters,
    in three quarters of the free slots, and leave the rest of the slots for merges.
    """
    counts = np.bincount(_codepoints("".join(lines)))
    used = np.flatnonzero(counts)
    room = max(1, (vocab_size - _SP_META_PIECES) * 3 // 4)
    if len(used) <= room:
        return lines
    by_freq = used[np.argsort(-counts[used], kind="stable")]
    share = counts[by_freq[:room]].sum() / counts.sum()
    log.info(
        "%s: %d distinct characters are too many for --vocab-size %d; the %d most frequent (%.2f%% of the text) "
        "get pieces, the rest are spelled as UTF-8 bytes",
        kind,
        len(used),
        vocab_size,
        room,
        100 * share,
    )
    # A user-defined piece ("\n") is never merged with its neighbours: a clean sentence break.
    rare = dict.fromkeys(by_freq[room:].tolist(), "\n")
    return [line.translate(rare) for line in lines]


class SentencePieceTokenizer(_Base):
    """A SentencePiece BPE or unigram model trained on the corpus, its proto kept in memory."""

    fit_sample = True

    def __init__(self, kind: str, model_proto: bytes) -> None:
        import sentencepiece as spm

        self.kind = kind
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.pieces = [self._piece_bytes(i) for i in range(self.sp.get_piece_size())]
        # SentencePiece reads a literal SPACE_MARK as a space: spell it as its UTF-8 bytes instead.
        self._mark_ids = [self.sp.piece_to_id(f"<0x{b:02X}>") for b in SPACE_MARK.encode()]

    def _piece_bytes(self, i: int) -> bytes:
        sp = self.sp
        if sp.is_byte(i):
            return bytes([int(sp.id_to_piece(i)[1:-1], 16)])  # "<0xAB>"
        if sp.is_control(i) or sp.is_unknown(i):
            return b""
        return sp.id_to_piece(i).replace(SPACE_MARK, " ").encode("utf-8")

    @classmethod
    def fit(cls, kind: str, found: Scan, vocab_size: int) -> SentencePieceTokenizer:
        return cls.train(kind, found.sample, vocab_size)

    @classmethod
    def from_state(cls, state: dict) -> SentencePieceTokenizer:
        return cls(state["kind"], base64.b64decode(state["model_proto"]))

    @classmethod
    def train(cls, kind: str, lines: list[str], vocab_size: int) -> SentencePieceTokenizer:
        """Train on `lines` (a bounded sample for large corpora), one sentence each, no newlines."""
        import sentencepiece as spm

        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(_fit_characters(lines, vocab_size, kind)),
                model_writer=model,
                model_type=kind,
                vocab_size=vocab_size,
                hard_vocab_limit=False,  # a small corpus gets the pieces it has, not an error
                character_coverage=_SP_COVERAGE,
                **_SP_OPTIONS,
            )
        except RuntimeError as e:
            raise CharRNNError(f"SentencePiece could not train a {kind} model: {e}") from None
        tok = cls(kind, model.getvalue())
        if tok.vocab_size < vocab_size:
            log.info("%s: the text yields %d pieces, fewer than --vocab-size %d", kind, tok.vocab_size, vocab_size)
        return tok

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def encode(self, text: str, unknown: str = "error", num_threads: int = -1) -> np.ndarray:
        """Ids of text; SentencePiece spreads its sentences over num_threads threads (-1: all cores)."""
        # Short sentences keep SentencePiece fast; "\n" is a piece of its own, so cutting after
        # it changes nothing, and a cut inside a long line only moves one piece boundary.
        parts = _SENTENCE.findall(text)
        # A few thousand sentences at a time: their lists of ids are made and freed in memory
        # that stays in cache, where a whole block's would fault in tens of megabytes.
        ids = [self._encode_parts(parts[i : i + _SP_BATCH], num_threads) for i in range(0, len(parts), _SP_BATCH)]
        return np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)

    def _encode_parts(self, parts: list[str], num_threads: int) -> np.ndarray:
        try:
            encoded = self.sp.encode(parts, num_threads=num_threads)
        except (TypeError, UnicodeEncodeError):  # a lone surrogate, e.g. from undecodable argv bytes
            raise CharRNNError("the text holds invalid Unicode (lone surrogates); give valid UTF-8") from None
        if SPACE_MARK in parts:
            encoded = [self._mark_ids if p == SPACE_MARK else ids for p, ids in zip(parts, encoded, strict=True)]
        return np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int64)

    def encode_blocks(self, blocks: Iterable[str], unknown: str = "error", workers: int = 0) -> Iterator[np.ndarray]:
        """encode() of each block, in order, spread over `workers` processes (0: one per core).

        SentencePiece's own threads still convert every sentence and id to and from Python on one
        thread; whole processes scale with the cores. At most two blocks per worker are in flight,
        so memory grows with the workers but not with the length of the stream.
        """
        workers = workers or available_cores()
        blocks = iter(blocks)
        head = list(itertools.islice(blocks, 2))
        if len(head) < 2 or workers < 2 or sys.platform != "linux":
            # One block is encoded as fast in this process; off Linux, fork is unsafe and spawn would
            # re-import the caller's main module (torch and all) in every worker.
            yield from (self.encode(block, unknown) for block in itertools.chain(head, blocks))
            return
        # Forked workers start at once, sharing this process's imports.
        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(self.kind, self.model_proto),
        )
        try:
            yield from _in_order(pool, _encode_in_worker, itertools.chain(head, blocks), 2 * workers)
        finally:
            pool.shutdown(cancel_futures=True)

    def to_state(self) -> dict:
        return {"kind": self.kind, "model_proto": base64.b64encode(self.model_proto).decode()}


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_worker_tokenizer: SentencePieceTokenizer | None = None  # a worker process's own copy


def _start_worker(kind: str, model_proto: bytes) -> None:
    global _worker_tokenizer
    # The collector would walk every object inherited from the parent, copying their pages.
    gc.freeze()
    _worker_tokenizer = SentencePieceTokenizer(kind, model_proto)


def _encode_in_worker(text: str) -> np.ndarray:
    return _worker_tokenizer.encode(text, num_threads=1)  # the other cores run the other workers


def _in_order(pool: Executor, fn: Callable, items: Iterable, depth: int) -> Iterator:
    """fn of each item on the pool, yielded in order, with at most `depth` items in flight."""
    pending: deque[Future] = deque()
    for item in items:
        if len(pending) == depth:
            yield pending.popleft().result()
        pending.append(pool.submit(fn, item))
    while pending:
        yield pending.popleft().result()


def from_state(state: dict) -> Tokenizer:
    kind = state.get("kind")
    if kind not in TOKENIZER_INFO:
        raise CharRNNError(f"unknown tokenizer kind {kind!r} in checkpoint")
    return tokenizer_class(kind).from_state(state)
