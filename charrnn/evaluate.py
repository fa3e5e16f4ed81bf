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

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from charrnn.data import BPTTBatches
from charrnn.errors import CharRNNError
from charrnn.lines import LineBatches
from charrnn.model import CharRNN, State
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


@torch.inference_mode()
def evaluate_ids(
    model: CharRNN,
    ids: np.ndarray,
    chars: int,
    batch_size: int,
    seq_len: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
) -> EvalResult:
    """A whole split's token ids, read as parallel streams (training's validation).

    The streams carry their state from window to window; there are as many as the batch (at
    least MIN_EVAL_STREAMS) as long as each keeps MIN_STREAM_TOKENS, fewer on a short split.
    """
    longest = min((len(ids) - 1) // (seq_len + 1), (len(ids) - 1) // MIN_STREAM_TOKENS)
    streams = max(1, min(max(batch_size, MIN_EVAL_STREAMS), longest))
    batches = BPTTBatches(ids, streams, seq_len, allow_partial=True)
    nats, count = _sum_windows(model, batches, device, autocast_dtype, model.init_state(streams, device))
    return EvalResult(count, chars, nats, 0, len(ids))


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
    """A split read as independent lines (`items lines`): each from a reset state, as training reads
    them (charrnn.lines), its newline predicted. Every token of the text is predicted once."""
    batches = LineBatches(ids, newline, max(batch_size, MIN_EVAL_STREAMS), seq_len, seed=None)
    nats, count = _sum_windows(model, batches, device, autocast_dtype, None)
    return EvalResult(count, chars, nats, 0, len(ids))


def _sum_windows(
    model: CharRNN,
    batches: BPTTBatches | LineBatches,
    device: torch.device,
    dtype: torch.dtype | None,
    state: State | None,
) -> tuple[float, int]:
    """Summed nats and predicted tokens over every window, in eval mode. With a `state`, it carries from
    window to window (streams); without, each window starts fresh (independent lines)."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for i in range(len(batches)):
        x, y = (t.to(device, non_blocking=True) for t in batches.get(i))
        start = model.init_state(x.shape[0], device) if state is None else state
        nats, after = _summed_loss(model, x, y, start, dtype)
        state = None if state is None else after
        total += nats
        count += batches.predicted(i)
    model.train(was_training)
    return total.item(), count


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
    cuts). `unknown="skip"` leaves out characters a char model never saw (and counts them).
    With `newline` (a run trained with items lines) each line is scored on its own from a reset
    state instead, as validation does; the blocks read_text gives hold whole lines.
    """
    was_training = model.training
    model.eval()
    scorer = _Scorer(model, torch.device(device), chunk_tokens)
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
