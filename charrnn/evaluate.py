"""The one evaluator: the loss of a text under a model, for training's validation and `charrnn eval`.

Bits per character, everywhere in charrnn (validation `val_bpc`, `charrnn eval`, `info`):

    bits/char = (nats per predicted token) x (tokens of the text / characters of the text) / ln 2

The mean loss per predicted token is scaled by how many tokens the text takes per character, so
it states what the model pays per character of the whole text, and a character model and a
subword model compare on the same scale. With the char tokenizer tokens and characters are the
same count, so bits/char is the loss in nats divided by ln 2 exactly. The text's first token (and
in training's validation, each stream's first) has no context and is not predicted; the formula
spreads the mean loss over it rather than counting it free, so a short text is not flattered.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from charrnn.data import IGNORE, PIECE_WINDOWS, BPTTBatches, DocBatches, Split
from charrnn.errors import CharRNNError
from charrnn.lines import LineBatches, newline_id, newline_token
from charrnn.model import CharRNN, State, restart_rows
from charrnn.runtime import autocast
from charrnn.tokenizers import Tokenizer

log = logging.getLogger("charrnn")

LN2 = math.log(2)
CHUNK_TOKENS = 4096  # tokens per forward pass: long enough to be fast, small enough for any memory
MIN_EVAL_STREAMS = 64  # validation runs more streams than training does: faster, each still long
# Each stream starts from a zero state and pays for it over its first few hundred tokens; streams
# at least this long keep that cost small, so validation agrees with one pass over the same text.
MIN_STREAM_TOKENS = 1024


def bits_per_char(nats_per_token: float, tokens: int, chars: int) -> float:
    """The one formula (see the module docstring): tokens and characters of the whole text."""
    return nats_per_token * tokens / chars / LN2


@dataclass
class EvalResult:
    tokens: int  # tokens predicted (every token but the first of each stream, which has no context)
    chars: int  # characters of text evaluated
    nats: float  # summed loss
    skipped: int  # characters the model's vocabulary lacks, left out
    text_tokens: int  # tokens the evaluated text encodes to, the unpredicted ones included

    @property
    def nats_per_token(self) -> float:
        return self.nats / self.tokens

    @property
    def bits_per_char(self) -> float:
        return bits_per_char(self.nats_per_token, self.text_tokens, self.chars)

    def plus(self, other: EvalResult) -> EvalResult:
        """Two texts' results as one: every count adds."""
        return EvalResult(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_token)

    def as_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "chars": self.chars,
            "nats_per_token": self.nats_per_token,
            "bits_per_char": self.bits_per_char,
            "perplexity": self.perplexity,
            "skipped_chars": self.skipped,
        }


def _summed_loss(
    model: CharRNN, x: torch.Tensor, y: torch.Tensor, state: State | None, dtype: torch.dtype | None
) -> tuple[torch.Tensor, State]:
    """Summed nats of predicting y from x, (rows, time) each, and the state after them."""
    with autocast(x.device, dtype):
        logits, state = model(x, state)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").double(), state


def make_batches(
    split: Split,
    tokenizer: Tokenizer,
    model: CharRNN,
    items: str,
    batch_size: int,
    seq_len: int,
    shard: tuple[int, int] = (0, 1),
    seed: int | None = 0,
    allow_partial: bool = False,
) -> BPTTBatches | DocBatches | LineBatches:
    """The batches a split is read in: independent lines (items lines), documents from the reset state
    after a newline (a model that starts so), or contiguous streams (a model made before documents)."""
    if items == "lines":
        return LineBatches(split.ids, newline_id(tokenizer), batch_size, seq_len, shard, seed)
    if model.newline_first:
        pieces = PIECE_WINDOWS if seed is not None else None  # validation reads whole documents
        nl = newline_id(tokenizer)
        return DocBatches(split.ids, split.starts, nl, batch_size, seq_len, shard, allow_partial, pieces)
    return BPTTBatches(split.ids, batch_size, seq_len, shard, allow_partial)


@torch.inference_mode()
def evaluate_split(
    model: CharRNN,
    split: Split,
    tokenizer: Tokenizer,
    items: str,
    batch_size: int,
    seq_len: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
) -> EvalResult:
    """A whole split read as training reads it (training's validation).

    Streams carry their state from window to window; there are as many as the batch (at least
    MIN_EVAL_STREAMS) as long as each keeps MIN_STREAM_TOKENS, fewer on a short split. Lines are
    sorted by length (less padding, the same sum).
    """
    ids = split.ids
    if items == "lines":
        streams = max(batch_size, MIN_EVAL_STREAMS)
    else:
        longest = min((len(ids) - 1) // (seq_len + 1), (len(ids) - 1) // MIN_STREAM_TOKENS)
        streams = max(1, min(max(batch_size, MIN_EVAL_STREAMS), longest))
    batches = make_batches(split, tokenizer, model, items, streams, seq_len, seed=None, allow_partial=True)
    nats, count = _sum_windows(model, batches, device, autocast_dtype)
    return EvalResult(count, split.n_chars, nats, 0, len(ids))


@torch.inference_mode()
def evaluate_lines(
    model: CharRNN,
    ids: np.ndarray,
    chars: int,
    batch_size: int,
    seq_len: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    *,
    newline: int,
) -> EvalResult:
    """Text read as independent lines (`items lines`): each from a reset state, as training reads
    them (charrnn.lines), its newline predicted. Every token of the text is predicted once."""
    batches = LineBatches(ids, newline, max(batch_size, MIN_EVAL_STREAMS), seq_len, seed=None)
    nats, count = _sum_windows(model, batches, device, autocast_dtype)
    return EvalResult(count, chars, nats, 0, len(ids))


def _sum_windows(
    model: CharRNN,
    batches: BPTTBatches | DocBatches | LineBatches,
    device: torch.device,
    dtype: torch.dtype | None,
) -> tuple[float, int]:
    """Summed nats and predicted tokens over every window, in eval mode. Streams carry their state from
    window to window (reset where a document starts); independent lines start each window afresh."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count, state = 0, model.init_state(batches.rows, device)
    for i in range(len(batches)):
        x, y = (t.to(device, non_blocking=True) for t in batches.get(i))
        if batches.carries_state:
            state = restart_rows(state, batches.resets(i))
        else:
            state = model.init_state(x.shape[0], device)
        nats, state = _summed_loss(model, x, y, state, dtype)
        total += nats
        count += batches.predicted(i)
    model.train(was_training)
    return total.item(), count


# -- the cold start: the first characters read from the reset state -------------------------------

COLD_CHARS = 64  # the cold-start loss reads this many characters after each start
COLD_ROWS = 64  # ... at this many starts at most


def piece_chars(tokenizer: Tokenizer) -> np.ndarray:
    """Characters each token's piece adds (UTF-8 lead bytes): a byte token continuing a character adds none."""
    return np.array([sum(1 for b in p if b & 0xC0 != 0x80) for p in tokenizer.pieces], dtype=np.int64)


def opening(ids: np.ndarray, chars: np.ndarray, n_chars: int = COLD_CHARS) -> np.ndarray:
    """The first tokens of `ids` that cover n_chars characters (all of them if they cover fewer)."""
    covered = np.cumsum(chars[np.asarray(ids, dtype=np.int64)])
    return np.asarray(ids[: int(np.searchsorted(covered, n_chars)) + 1], dtype=np.int64)


def cold_starts(ids: np.ndarray, starts: np.ndarray, newline: int, rows: int = COLD_ROWS) -> np.ndarray:
    """Where a split's cold-start loss reads: its document starts, or where it has none (one file),
    the first line start after each of `rows` points spread evenly through it; at most `rows` of them."""
    starts = np.asarray(starts, dtype=np.int64)
    starts = starts[starts < len(ids) - 1]
    if len(starts):
        return starts[np.unique(np.linspace(0, len(starts) - 1, min(rows, len(starts))).round().astype(np.int64))]
    found = []
    for point in np.linspace(0, len(ids), rows, endpoint=False).astype(np.int64).tolist():
        nl = np.flatnonzero(np.asarray(ids[point : point + 4096]) == newline)
        if len(nl) and point + nl[0] + 1 < len(ids) - 1:
            found.append(point + int(nl[0]) + 1)
    return np.unique(np.asarray(found, dtype=np.int64))


@torch.inference_mode()
def cold_start_loss(
    model: CharRNN, openings: list[np.ndarray], newline: int, device: torch.device, dtype: torch.dtype | None = None
) -> float | None:
    """Mean nats per token of each opening read from the reset state after a newline, as an unprimed
    sample starts; None without openings. Padding's targets are ignored."""
    openings = [o for o in openings if len(o)]
    if not openings:
        return None
    width = max(len(o) for o in openings)
    x = np.full((len(openings), width), newline, dtype=np.int64)
    y = np.full((len(openings), width), IGNORE, dtype=np.int64)
    for r, o in enumerate(openings):
        x[r, 1 : len(o)], y[r, : len(o)] = o[:-1], o
    was_training = model.training
    model.eval()
    x_, y_ = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    nats, _ = _summed_loss(model, x_, y_, model.init_state(len(openings), device), dtype)
    model.train(was_training)
    return float(nats) / int((y != IGNORE).sum())


def split_cold_start(
    model: CharRNN, split: Split, tokenizer: Tokenizer, device: torch.device, dtype: torch.dtype | None = None
) -> float | None:
    """The cold-start loss of a split (training's validation); None where the vocabulary has no newline."""
    newline = newline_token(tokenizer)
    if newline is None:
        return None
    chars = piece_chars(tokenizer)
    ends = cold_starts(split.ids, split.starts, newline)
    openings = [opening(split.ids[s : s + COLD_CHARS * 8], chars) for s in ends.tolist()]
    return cold_start_loss(model, openings, newline, device, dtype)


def text_cold_start(model: CharRNN, tokenizer: Tokenizer, snippets: list[str], device: torch.device) -> float | None:
    """The cold-start loss of texts that each begin at a document or line start (`charrnn eval`)."""
    newline = newline_token(tokenizer)
    if newline is None:
        return None
    chars = piece_chars(tokenizer)
    openings = [opening(tokenizer.encode(s, unknown="skip"), chars) for s in snippets]
    return cold_start_loss(model, openings, newline, device)


class _Scorer:
    """Feeds ids through the model in chunks, carrying the state and the last id across calls."""

    def __init__(self, model: CharRNN, device: torch.device, chunk_tokens: int) -> None:
        self.model, self.device, self.chunk = model, device, chunk_tokens
        self.state = model.init_state(1, device)
        self.pending = np.zeros(0, dtype=np.int64)
        self.nats = torch.zeros((), dtype=torch.float64, device=device)
        self.tokens = 0

    def feed(self, ids: np.ndarray, final: bool = False) -> None:
        self.pending = np.concatenate([self.pending, ids.astype(np.int64)])
        while len(self.pending) > self.chunk or (final and len(self.pending) > 1):
            piece = torch.from_numpy(self.pending[: self.chunk + 1]).to(self.device)
            nats, self.state = _summed_loss(self.model, piece[None, :-1], piece[None, 1:], self.state, None)
            self.nats += nats
            self.tokens += len(piece) - 1
            self.pending = self.pending[len(piece) - 1 :]  # its last id is the next chunk's first input


@torch.inference_mode()
def evaluate_text(
    model: CharRNN,
    tokenizer: Tokenizer,
    chunks: Iterable[str],
    device: torch.device | str = "cpu",
    unknown: str = "skip",
    chunk_tokens: int = CHUNK_TOKENS,
    newline: int | None = None,
) -> EvalResult:
    """Nats per token and bits per character of a text given as a stream of chunks.

    The whole text is one sequence: the hidden state runs on from chunk to chunk, so the
    result does not depend on how the text is cut (up to a subword tokenizer's choices at the
    cuts). A model that starts texts after a newline (ModelConfig.start) is fed one first, and
    then predicts every token. `unknown="skip"` leaves out characters a char model never saw (and counts them).
    With `newline` (a run trained with items lines) each line is scored on its own from a reset
    state instead, as validation does; the blocks read_text gives hold whole lines.
    """
    was_training = model.training
    model.eval()
    scorer = _Scorer(model, torch.device(device), chunk_tokens)
    if model.newline_first and newline is None:  # read from the reset state after a newline, as trained
        scorer.pending = np.asarray([newline_id(tokenizer)], dtype=np.int64)
    chars = skipped = text_tokens = 0
    for chunk in chunks:
        ids = tokenizer.encode(chunk, unknown=unknown)
        if tokenizer.char_level:
            skipped += len(chunk) - len(ids)
        chars += len(chunk)
        text_tokens += len(ids)
        if newline is None:
            scorer.feed(ids)
        elif len(ids):
            part = evaluate_lines(model, ids, 0, MIN_EVAL_STREAMS, chunk_tokens, scorer.device, newline=newline)
            scorer.nats += part.nats
            scorer.tokens += part.tokens
    scorer.feed(np.zeros(0, dtype=np.int64), final=True)
    model.train(was_training)
    if scorer.tokens == 0:
        raise CharRNNError("the text is too short to evaluate: it needs at least two tokens")
    if skipped:
        log.warning("left out %d character(s) the model's vocabulary does not have", skipped)
    return EvalResult(scorer.tokens, chars - skipped, float(scorer.nats), skipped, text_tokens)


def evaluate_documents(
    model: CharRNN,
    tokenizer: Tokenizer,
    blocks: Iterable[tuple[bool, str]],
    device: torch.device | str = "cpu",
    unknown: str = "skip",
    newline: int | None = None,
) -> EvalResult:
    """evaluate_text over files (blocks tagged with whether they begin one, data.read_documents): each
    file a document from the reset state for a model that starts so, else all of them one sequence."""
    if not model.newline_first or newline is not None:
        return evaluate_text(model, tokenizer, (chunk for _, chunk in blocks), device, unknown, newline=newline)
    total: EvalResult | None = None
    for document in _documents(blocks):
        part = evaluate_text(model, tokenizer, document, device, unknown)
        total = part if total is None else total.plus(part)
    if total is None:
        raise CharRNNError("the text is too short to evaluate: it needs at least two tokens")
    return total


def _documents(blocks: Iterable[tuple[bool, str]]) -> Iterator[Iterator[str]]:
    """Tagged blocks grouped into one block stream per document."""
    count = 0

    def document(block: tuple[bool, str]) -> int:
        nonlocal count
        count += block[0]
        return count

    for _, group in itertools.groupby(blocks, document):
        yield (chunk for _, chunk in group)
