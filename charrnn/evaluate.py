"""Loss of any text under a checkpoint, streamed: one stream, the state carried through the file."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from charrnn.errors import CharRNNError
from charrnn.model import CharRNN
from charrnn.tokenizers import Tokenizer

log = logging.getLogger("charrnn")

LN2 = math.log(2)
CHUNK_TOKENS = 4096  # tokens per forward pass: long enough to be fast, small enough for any memory


@dataclass
class EvalResult:
    tokens: int  # tokens predicted (every token but the first, which has no context)
    chars: int  # characters of text evaluated
    nats: float  # summed loss
    skipped: int  # characters the model's vocabulary lacks, left out

    @property
    def nats_per_token(self) -> float:
        return self.nats / self.tokens

    @property
    def bits_per_char(self) -> float:
        # As in training: loss per token over characters per token, so char and subword models compare.
        chars_per_token = self.chars / (self.tokens + 1)
        return self.nats_per_token / chars_per_token / LN2

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
            logits, self.state = self.model(piece[None, :-1], self.state)
            self.nats += F.cross_entropy(logits[0].float(), piece[1:], reduction="sum").double()
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
) -> EvalResult:
    """Nats per token and bits per character of a text given as a stream of chunks.

    The whole text is one sequence: the hidden state runs on from chunk to chunk, so the
    result does not depend on how the text is cut (up to a subword tokenizer's choices at the
    cuts). `unknown="skip"` leaves out characters a char model never saw (and counts them).
    """
    was_training = model.training
    model.eval()
    scorer = _Scorer(model, torch.device(device), chunk_tokens)
    chars = skipped = 0
    for chunk in chunks:
        ids = tokenizer.encode(chunk, unknown=unknown)
        if tokenizer.char_level:
            skipped += len(chunk) - len(ids)
        chars += len(chunk)
        scorer.feed(ids)
    scorer.feed(np.zeros(0, dtype=np.int64), final=True)
    model.train(was_training)
    if scorer.tokens == 0:
        raise CharRNNError("the text is too short to evaluate: it needs at least two tokens")
    if skipped:
        log.warning("left out %d character(s) the model's vocabulary does not have", skipped)
    return EvalResult(scorer.tokens, chars - skipped, float(scorer.nats), skipped)
