"""Corpus to token-id arrays (streamed, memory-mapped, cached) and truncated-BPTT batching."""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from charrnn import tokenizers
from charrnn.config import DataConfig
from charrnn.errors import CharRNNError
from charrnn.fileio import atomic_write
from charrnn.registry import TOKENIZER_INFO, tokenizer_class

log = logging.getLogger("charrnn")

IGNORE = -100  # a padded position's target: F.cross_entropy's default ignore_index
READ_BLOCK = 4 << 20  # bytes per read: big enough for vectorized encoding, small in memory
CACHE_FORMAT = 3  # 3: document starts in the metadata, file sizes in the key
SP_SAMPLE_CHARS = 10_000_000  # SentencePiece trains on at most about this much text (bounded memory)


# ---------------------------------------------------------------------------------------------
# Reading text


def _looks_binary(path: Path) -> bool:
    with open(path, "rb") as f:
        return b"\0" in f.read(8192)


def resolve_sources(sources: list[str], spool_dir: Path) -> list[Path]:
    """Expand folders to the text files below them (sorted); spool stdin to a file."""
    files: list[Path] = []
    for name in sources:
        if name == "-":
            spool_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix="stdin-", suffix=".txt", dir=spool_dir)
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(sys.stdin.buffer, f)
            files.append(Path(tmp))
            continue
        path = Path(name)
        if path.is_dir():
            found = [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and not _looks_binary(p)
            ]
            if not found:
                raise CharRNNError(f"folder {name} holds no text files")
            files.extend(found)
        elif path.is_file():
            if not os.access(path, os.R_OK):
                raise CharRNNError(f"cannot read {name}: permission denied")
            files.append(path)
        else:
            raise CharRNNError(f"no such file or folder: {name}")
    return files


# Byte-order marks recognised at the start of a file, and the codec each announces.
BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def sniff_bom(head: bytes, encoding: str) -> tuple[str, int]:
    """The codec to read a file with and the length of its byte-order mark, which is dropped.

    utf-8 (the default) also recognises a UTF-16 mark, so a file saved as "Unicode" on Windows reads
    as it is; a named UTF-16 codec skips a mark of its own; other codecs read the bytes as they are.
    """
    name = codecs.lookup(encoding).name
    for bom, codec in BOMS:
        if head.startswith(bom) and (name in ("utf-8", codec) or (name == "utf-16" and codec != "utf-8")):
            return codec, len(bom)
    return encoding, 0


def _nul_offset(block: bytes, text: str, start: int, codec: str) -> int | None:
    """The byte offset of the first NUL (a binary file) in a block, or None. ASCII-compatible codecs
    show it as a zero byte; the others (UTF-16, UTF-32) as a decoded NUL character."""
    if "\0".encode(codec) == b"\0":
        at = block.find(b"\0")
        return None if at < 0 else start + at
    at = text.find("\0")
    return None if at < 0 else start + len(text[:at].encode(codec))


def read_file_text(path: Path, errors: str = "strict", encoding: str = "utf-8") -> Iterator[str]:
    """One file as text in blocks of whole lines, decoded incrementally (flat memory, any codec).

    A decoding error names the file and the byte offset of the bad bytes: the decoder's exception
    counts from the bytes it still held from the previous block, so those are subtracted.
    """
    with open(path, "rb") as f:
        head = f.read(4)
        codec, offset = sniff_bom(head, encoding)
        f.seek(offset)
        decoder = codecs.getincrementaldecoder(codec)(errors=errors)
        carry = ""
        while True:
            block = f.read(READ_BLOCK)
            held = len(decoder.getstate()[0])
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                shown = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
                raise CharRNNError(
                    f"{path} is not valid {shown} (byte offset {offset - held + e.start}); "
                    "convert it, name its encoding, or pass encoding_errors replace",
                    "encoding_errors",
                    "encoding",
                ) from None
            nul = _nul_offset(block, text, offset - held, codec)
            if nul is not None:
                raise CharRNNError(f"{path} looks binary (NUL byte at offset {nul}); give a text file")
            offset += len(block)
            if not block:
                if carry + text:
                    yield carry + text
                break
            text = carry + text
            cut = text.rfind("\n") + 1  # keep lines whole across blocks (matters for BPE)
            if cut == 0 and len(text) < READ_BLOCK:
                carry = text
                continue
            cut = cut or len(text)
            carry = text[cut:]
            yield text[:cut]


def read_stdin_text(encoding: str) -> str:
    """All of stdin (a piped prime) decoded as read_file_text decodes a file, its line ends
    made newlines as text-mode stdin makes them."""
    raw = sys.stdin.buffer.read()
    codec, skip = sniff_bom(raw[:4], encoding)
    try:
        text = raw[skip:].decode(codec)
    except UnicodeDecodeError as e:
        raise CharRNNError(f"stdin is not valid {encoding} (byte offset {skip + e.start})", "encoding") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(files: list[Path], errors: str = "strict", encoding: str = "utf-8") -> Iterator[str]:
    """Stream the files as text in blocks of whole lines; check the encoding and reject binary data."""
    for _, chunk in read_documents(files, errors, encoding):
        yield chunk


def read_documents(files: list[Path], errors: str = "strict", encoding: str = "utf-8") -> Iterator[tuple[bool, str]]:
    """read_text's blocks, each with whether it begins a document (a file; stdin is spooled to one)."""
    for path in files:
        for i, chunk in enumerate(read_file_text(path, errors, encoding)):
            yield i == 0, chunk


def openings(files: list[Path], encoding: str, n_chars: int, rows: int = 64, length: int = 256) -> list[str]:
    """Where a text's cold start is read: the first `length` characters of each file (at most `rows`,
    spread evenly), or of one file (`n_chars` long) the text after the first line start past each of
    `rows` points spread evenly through it."""
    if len(files) > 1:
        chosen = np.unique(np.linspace(0, len(files) - 1, min(rows, len(files))).round().astype(np.int64))
        found = [next(read_file_text(files[i], "replace", encoding), "")[:length] for i in chosen.tolist()]
        return [text for text in found if text]
    points = [k * n_chars // rows for k in range(rows)]
    found, offset = [], 0
    for chunk in read_file_text(files[0], "replace", encoding) if files else ():
        while points and points[0] < offset + len(chunk):
            at = chunk.find("\n", points[0] - offset)
            if at < 0:  # no line starts in the rest of this block: look in the next
                points[0] = offset + len(chunk)
                break
            found.append(chunk[at + 1 : at + 1 + length])
            points.pop(0)
        offset += len(chunk)
    return [text for text in found if text]


def fingerprint(files: list[Path]) -> str:
    """SHA-256 of the corpus bytes, in order; a changed corpus gives a new cache and a new hash."""
    h = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            while block := f.read(READ_BLOCK):
                h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Tokenizing into cached memory-mapped arrays


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every id."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise CharRNNError(f"vocabulary of {vocab_size} is too large")


@dataclass
class Scan:
    """What one pass over the training text learns: its length, and what builds the tokenizer."""

    n_chars: int
    chars: tokenizers.CharSet
    sample: list[str]  # SentencePiece training sentences, at most about SP_SAMPLE_CHARS


def scan(files: list[Path], errors: str, tokenizer: str | None, encoding: str = "utf-8") -> Scan:
    """Count the characters; collect what the named tokenizer fits on (None: a given tokenizer,
    nothing): the character set, or a training sample of sentences.

    For SentencePiece the sample is a contiguous slice of every block, in proportion, so that it
    spreads over the whole corpus and stays bounded in memory however large the corpus is.
    """
    fraction = SP_SAMPLE_CHARS / max(1, sum(p.stat().st_size for p in files))  # bytes >= characters
    rng = random.Random(0)  # the same corpus gives the same sample, so the same tokenizer
    result = Scan(0, tokenizers.CharSet(), [])
    fits = tokenizer_class(tokenizer) if tokenizer is not None else None
    for chunk in read_text(files, errors, encoding):
        result.n_chars += len(chunk)
        if fits is not None and fits.fit_chars:
            result.chars.add(chunk)
        if fits is not None and fits.fit_sample:
            take = len(chunk) if fraction >= 1 else round(len(chunk) * fraction)
            start = rng.randrange(len(chunk) - take + 1)
            result.sample.extend(tokenizers.sentences(chunk[start : start + take]))
    return result


def build_tokenizer(cfg: DataConfig, found: Scan) -> tokenizers.Tokenizer:
    return tokenizer_class(cfg.tokenizer).fit(cfg.tokenizer, found, cfg.vocab_size)


@dataclass
class Split:
    """One split's token ids (a read-only memory map), the number of characters they encode, and where
    its documents start (token offsets; a split that begins inside a document has no start at 0)."""

    ids: np.ndarray
    n_chars: int
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def chars_per_token(self) -> float:
        return self.n_chars / max(1, len(self.ids))


@dataclass
class Corpus:
    tokenizer: tokenizers.Tokenizer
    train: Split
    val: Split
    sha256: str


@dataclass
class CacheMeta:
    """What a cache entry records beside its two id files: the one writer (`save`) and reader (`read`)."""

    tokenizer: dict
    dtype: str
    train: tuple[int, int, list[int]]  # tokens, characters, document starts
    val: tuple[int, int, list[int]]
    sha256: str
    format: int = CACHE_FORMAT

    def save(self, path: Path) -> None:
        with atomic_write(path) as f:
            f.write(json.dumps(asdict(self)).encode())

    @classmethod
    def read(cls, path: Path, *bins: Path) -> CacheMeta | None:
        """The entry, or None where it is missing, of another format or lacks an id file."""
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict) or raw.get("format") != CACHE_FORMAT or not all(p.exists() for p in bins):
            return None
        return cls(**raw)

    def split(self, name: str, path: Path) -> Split:
        tokens, chars, starts = getattr(self, name)
        return Split(_memmap(path, self.dtype, tokens), chars, np.asarray(starts, dtype=np.int64))


Tagged = Iterator[tuple[bool, str]]  # text blocks, each with whether it begins a document


def _encode_to_file(
    chunks: Tagged, tok: tokenizers.Tokenizer, path: Path, dtype: np.dtype, unknown: str
) -> tuple[int, int, list[int]]:
    """Encode a stream of text into a flat id file; returns (tokens, characters, document starts)."""
    n_tokens = n_chars = 0
    starts: list[int] = []
    begins: deque[bool] = deque()  # encode_blocks gives one id array per block, in order

    def texts() -> Iterator[str]:
        nonlocal n_chars
        for first, chunk in chunks:
            n_chars += len(chunk)
            begins.append(first)
            yield chunk

    pending = False  # a document began and has no token yet
    with atomic_write(path) as f:
        for ids in tok.encode_blocks(texts(), unknown):
            pending = begins.popleft() or pending
            if pending and len(ids):
                starts.append(n_tokens)
                pending = False
            f.write(ids.astype(dtype).tobytes())
            n_tokens += len(ids)
    return n_tokens, n_chars, starts


def _split_chars(chunks: Tagged, n_first: int) -> tuple[Tagged, Tagged]:
    """Cut a block stream at a character index into two streams (consumed one after the other)."""
    chunks = iter(chunks)
    rest: list[tuple[bool, str]] = []

    def first() -> Tagged:
        seen = 0
        for begins, chunk in chunks:
            if seen + len(chunk) >= n_first:
                cut = n_first - seen
                yield begins, chunk[:cut]
                rest.append((begins and cut == 0, chunk[cut:]))
                return
            seen += len(chunk)
            yield begins, chunk

    def second() -> Tagged:
        yield from rest
        yield from chunks

    return first(), second()


def _cache_key(cfg: DataConfig, files: list[Path], sha: str, val_files: list[Path], tokenizer) -> str:
    """The cache entry's name: corpus bytes and file sizes (where documents start), split, tokenizer."""
    val_sha = fingerprint(val_files) if val_files else f"last {cfg.val_frac}"
    tok_key = (
        hashlib.sha256(json.dumps(tokenizer.to_state(), sort_keys=True).encode()).hexdigest()
        if tokenizer
        else f"{cfg.tokenizer}-{cfg.vocab_size if TOKENIZER_INFO[cfg.tokenizer].uses_vocab_size else ''}"
    )
    codec = "" if cfg.encoding == "utf-8" else f"|{cfg.encoding}"
    sizes = ",".join(str(p.stat().st_size) for p in files + val_files)
    key = f"{CACHE_FORMAT}|{sha}|{sizes}|{val_sha}|{tok_key}|{cfg.encoding_errors}{codec}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def load_corpus(
    cfg: DataConfig, tokenizer: tokenizers.Tokenizer | None = None, expect_sha256: str | None = None
) -> Corpus:
    """Tokenize the corpus (or reuse the cache) into memory-mapped train and validation ids.

    Pass a tokenizer to encode with it (resuming, evaluating): characters it does not know are
    dropped. Otherwise one is built from the training text. `expect_sha256` refuses a corpus
    whose bytes changed. The cache is keyed by the corpus bytes and file sizes, the split and the tokenizer.
    """
    cache = Path(cfg.cache_dir)
    files = resolve_sources(cfg.sources, cache)
    val_files = resolve_sources([cfg.val_file], cache) if cfg.val_file else []
    if not any(p.stat().st_size for p in files):
        raise CharRNNError("the corpus is empty; give a file with some text in it")
    sha = fingerprint(files)
    if expect_sha256 and sha != expect_sha256:
        raise CharRNNError(
            "the corpus differs from the one this run was trained on; "
            "pass --allow-corpus-change to continue on the new text"
        )
    key = _cache_key(cfg, files, sha, val_files, tokenizer)
    meta_path = cache / f"{key}.json"
    train_path, val_path = cache / f"{key}.train.bin", cache / f"{key}.val.bin"
    meta = CacheMeta.read(meta_path, train_path, val_path)
    if meta is None:
        meta = _tokenize(cfg, files, val_files, tokenizer, sha, train_path, val_path)
        meta.save(meta_path)
        log.info(
            "tokenized %d file(s) with the %s tokenizer (cached in %s)",
            len(files) + len(val_files),
            cfg.tokenizer,
            cache,
        )
    for path in files + val_files:  # spooled stdin is no longer needed
        if path.parent == cache and path.name.startswith("stdin-"):
            path.unlink()
    if meta.train[1] == 0:
        raise CharRNNError("the corpus is empty; give a file with some text in it")
    return Corpus(
        tokenizer=tokenizer or tokenizers.from_state(meta.tokenizer),
        train=meta.split("train", train_path),
        val=meta.split("val", val_path),
        sha256=sha,
    )


def _tokenize(
    cfg: DataConfig,
    files: list[Path],
    val_files: list[Path],
    tokenizer: tokenizers.Tokenizer | None,
    sha: str,
    train_path: Path,
    val_path: Path,
) -> CacheMeta:
    """Build the tokenizer unless given, and encode both splits into their id files."""
    found = scan(files, cfg.encoding_errors, cfg.tokenizer if tokenizer is None else None, cfg.encoding)
    if found.n_chars == 0:
        raise CharRNNError("the corpus is empty; give a file with some text in it")
    given = tokenizer is not None
    tokenizer = tokenizer or build_tokenizer(cfg, found)
    dtype = id_dtype(tokenizer.vocab_size)
    # A separate validation file may hold characters the training text never shows.
    val_unknown = "skip" if val_files or given else "error"
    if val_files:
        train_chunks = read_documents(files, cfg.encoding_errors, cfg.encoding)
        val_chunks = read_documents(val_files, cfg.encoding_errors, cfg.encoding)
    else:
        n_train = found.n_chars - int(found.n_chars * cfg.val_frac)
        train_chunks, val_chunks = _split_chars(read_documents(files, cfg.encoding_errors, cfg.encoding), n_train)
    train_path.parent.mkdir(parents=True, exist_ok=True)
    train = _encode_to_file(train_chunks, tokenizer, train_path, dtype, "skip" if given else "error")
    val = _encode_to_file(val_chunks, tokenizer, val_path, dtype, val_unknown)
    return CacheMeta(tokenizer.to_state(), dtype.name, train, val, sha)


def _memmap(path: Path, dtype: str, length: int) -> np.ndarray:
    if length == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(length,))


# ---------------------------------------------------------------------------------------------
# Truncated-BPTT batching


class BPTTBatches:
    """Contiguous truncated-BPTT batches, as in pytorch/examples' batchify + get_batch.

    The id stream is cut into `batch_size` parallel streams (rows); window i of every stream
    covers positions [i*seq_len, (i+1)*seq_len) and its targets are the same positions plus one,
    so each stream continues from one window to the next with no gap and no overlap. A shard
    (rank, world) takes its own block of rows, for data-parallel training.
    """

    def __init__(
        self,
        ids: np.ndarray,
        batch_size: int,
        seq_len: int,
        shard: tuple[int, int] = (0, 1),
        allow_partial: bool = False,
    ) -> None:
        stream_len = len(ids) // batch_size
        if stream_len < seq_len + 1:
            raise CharRNNError(
                f"the text ({len(ids):,} tokens) is too short for one batch of {batch_size} streams "
                f"x {seq_len + 1} tokens; lower --batch-size or --seq-len, or give more text"
            )
        rank, world = shard
        self.rows = batch_size // world
        self.batch_size = batch_size
        self.streams = ids[: batch_size * stream_len].reshape(batch_size, stream_len)
        self.streams = self.streams[rank * self.rows : (rank + 1) * self.rows]
        self.seq_len = seq_len
        windows = stream_len - 1
        self.steps_per_epoch = -(-windows // seq_len) if allow_partial else windows // seq_len

    carries_state = True  # each row's state runs on from window to window

    def __len__(self) -> int:
        return self.steps_per_epoch

    def shuffle(self, epoch: int) -> None:
        """Every pass reads the text in its order."""

    def predicted(self, i: int) -> int:
        """Targets in window i over all processes: every token after the window's first, in every row."""
        start = i * self.seq_len
        return self.batch_size * (min(start + self.seq_len + 1, self.streams.shape[1]) - start - 1)

    def resets(self, i: int) -> None:
        """No row's state is reset inside a pass."""
        return None

    def get(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of window i, each (rows, <= seq_len) int64."""
        start = i * self.seq_len
        window = np.asarray(self.streams[:, start : start + self.seq_len + 1], dtype=np.int64)
        block = torch.from_numpy(window)
        return block[:, :-1], block[:, 1:]


PIECE_WINDOWS = 16  # a corpus of few documents starts a piece at a line start about this many windows apart


class DocBatches:
    """Truncated-BPTT windows over documents, each read from the reset state with a newline first.

    A document of n tokens is n predictions: its inputs are a newline and its first n-1 tokens, its
    targets its n tokens, which is what a sample, a prime, `eval` and `score` read. It fills
    ceil(n / seq_len) whole windows, the last padded with IGNORE targets, so each document begins at
    a window start, and there its row's state is reset (a multiply, no extra kernel call). The windows
    of all documents in order are cut into `batch_size` rows as BPTTBatches cuts tokens; a row's
    state runs on from window to window inside a document.

    A corpus with fewer documents than rows (one file, stdin) would see the reset state a few times a
    pass, so with `pieces` its documents are cut at a line start every `pieces` windows or so: the
    line starts stand in for document starts, as they do for the cold-start loss.
    """

    carries_state = True

    def __init__(
        self,
        ids: np.ndarray,
        starts: np.ndarray,
        newline: int,
        batch_size: int,
        seq_len: int,
        shard: tuple[int, int] = (0, 1),
        allow_partial: bool = False,
        pieces: int | None = None,
    ) -> None:
        self.ids, self.newline, self.seq_len, self.batch_size = ids, newline, seq_len, batch_size
        bounds = np.unique(np.concatenate([[0], np.asarray(starts, dtype=np.int64), [len(ids)]]))
        bounds = bounds[bounds <= len(ids)]
        if pieces and len(bounds) - 1 < batch_size:
            bounds = _line_cuts(ids, bounds, newline, pieces * seq_len)
        self.seg_start, self.seg_len = bounds[:-1], np.diff(bounds)
        windows = -(-self.seg_len // seq_len)
        self.first_window = np.concatenate([[0], np.cumsum(windows)])
        total = int(self.first_window[-1])
        self.per_row = -(-total // batch_size) if allow_partial else total // batch_size
        if self.per_row < 1:
            raise CharRNNError(
                f"the text ({len(ids):,} tokens) is too short for one batch of {batch_size} streams "
                f"x {seq_len} tokens; lower --batch-size or --seq-len, or give more text"
            )
        rank, world = shard
        self.rows = batch_size // world
        self.row_ids = np.arange(rank * self.rows, (rank + 1) * self.rows)
        self.total_windows = total
        self.steps_per_epoch = self.per_row

    def __len__(self) -> int:
        return self.steps_per_epoch

    def shuffle(self, epoch: int) -> None:
        """Every pass reads the documents in their order."""

    def _place(self, rows: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For window i of `rows`: its document (-1 past the end), its offset in the document's
        predictions, and how many of its targets are real."""
        w = rows * self.per_row + i
        doc = np.searchsorted(self.first_window, w, side="right") - 1
        doc = np.where(w < self.total_windows, doc, -1)
        offset = (w - self.first_window[np.maximum(doc, 0)]) * self.seq_len
        real = np.clip(self.seg_len[np.maximum(doc, 0)] - offset, 0, self.seq_len)
        return doc, offset, np.where(doc >= 0, real, 0)

    def predicted(self, i: int) -> int:
        """Real (not padded) targets in window i over all processes."""
        return int(self._place(np.arange(self.batch_size), i)[2].sum())

    def resets(self, i: int) -> torch.Tensor:
        """(rows,) bool: the rows of this process whose state is reset before window i (a document starts)."""
        doc, offset, _ = self._place(self.row_ids, i)
        return torch.from_numpy((offset == 0) | (doc < 0))

    def get(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of window i, each (rows, seq_len) int64; padding's targets are IGNORE."""
        x = np.full((self.rows, self.seq_len), self.newline, dtype=np.int64)
        y = np.full((self.rows, self.seq_len), IGNORE, dtype=np.int64)
        for r, (d, a, k) in enumerate(zip(*(v.tolist() for v in self._place(self.row_ids, i)), strict=True)):
            if k == 0:
                continue
            s = int(self.seg_start[d])
            y[r, :k] = self.ids[s + a : s + a + k]
            if a == 0:
                x[r, 1:k] = self.ids[s : s + k - 1]
            else:
                x[r, :k] = self.ids[s + a - 1 : s + a - 1 + k]
        return torch.from_numpy(x), torch.from_numpy(y)


def _line_cuts(ids: np.ndarray, bounds: np.ndarray, newline: int, span: int) -> np.ndarray:
    """`bounds` with each document cut into pieces of at most `span` tokens, each starting at a line
    start where one lies in the piece's second half (else at `span`, mid-line)."""
    cuts = [0]
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        at = start
        while end - at > span:
            back = np.asarray(ids[at + span // 2 : at + span])
            nl = np.flatnonzero(back == newline)
            at = at + span // 2 + int(nl[-1]) + 1 if len(nl) else at + span
            cuts.append(at)
        cuts.append(end)
    return np.unique(np.asarray(cuts, dtype=np.int64))


def stdlib_sources() -> list[str]:
    """The Python standard library's own top-level modules: a corpus every Python install has."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(str(p) for p in root.glob("*.py") if not _looks_binary(p))
    if not files:
        raise CharRNNError(f"found no standard-library sources under {root}")
    return files
