"""One item per line (`--items lines`): batches of whole lines, each line trained from a reset state.

For corpora whose lines are independent examples (names, titles, one-line poems) the text before a
line says nothing about it, and a sample should be one such item. So every line is its own sequence:

- A row of a batch is one line. Its inputs are the newline in front of it (the text's first line gets
  one too) and its tokens; its targets are its tokens and the newline that ends it, so the model learns
  where an item ends. Every row starts from the zero state: training sees exactly what sampling does
  (reset state, a newline fed, then the item up to the next newline). Validation scores the same rows.
- Rows are padded to the batch's longest line. Padded targets are IGNORE (cross-entropy's ignore_index),
  so padding adds nothing to the loss or its mean. Padding only follows a line's tokens and a recurrent
  cell's output at a position depends on earlier inputs only, so any cell (cuDNN's nn.LSTM/GRU/RNN or a
  hand-written loop) gives each line the loss it would have alone: no packed sequences needed.
- A line longer than seq_len predictions is cut into pieces of seq_len, each a row of its own from a reset
  state with the token before it as first input: memory stays bounded by batch_size x seq_len.
- Every line (or piece) is in exactly one batch per epoch. Training shuffles them anew each epoch from
  the run's seed and the epoch (so a resumed run continues the same order) and deals them into ceil(lines / batch_size) batches
  of at most batch_size rows; evaluation sorts them by length instead (less padding, same sum). With
  several processes each takes its share of every batch's rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from charrnn.config import SampleConfig, SampleOutput
from charrnn.data import IGNORE
from charrnn.errors import CharRNNError
from charrnn.tokenizers import Tokenizer


def newline_token(tokenizer: Tokenizer) -> int | None:
    """The newline's token, or None where the vocabulary has no newline of its own."""
    ids = tokenizer.encode("\n", unknown="skip")
    return int(ids[0]) if len(ids) == 1 else None


def newline_id(tokenizer: Tokenizer) -> int:
    """The newline's token: lines need it as a token of its own (char and SentencePiece give it one)."""
    newline = newline_token(tokenizer)
    if newline is None:
        raise CharRNNError("items lines needs a corpus with newlines and a tokenizer that keeps them", "items")
    return newline


def line_spans(ids: np.ndarray, newline: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of every row, in the coordinates of ext = [newline] + ids: row inputs are
    ext[start : start + length], its targets ext[start + 1 : start + length + 1]."""
    starts = np.concatenate([[0], np.flatnonzero(np.asarray(ids) == newline) + 1])
    lengths = np.append(starts[1:], len(ids)) - starts  # up to and with the next newline, or the text's end
    starts, lengths = starts[lengths > 0], lengths[lengths > 0]
    pieces = -(-lengths // seq_len)
    within = np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    return np.repeat(starts, pieces) + within * seq_len, np.minimum(
        seq_len, np.repeat(lengths, pieces) - within * seq_len
    )


class LineBatches:
    """Padded batches of whole lines (see the module docstring); `get(i)` gives batch i's inputs and
    targets, `predicted(i)` the targets it scores over all processes."""

    def __init__(
        self,
        ids: np.ndarray,
        newline: int,
        batch_size: int,
        seq_len: int,
        shard: tuple[int, int] = (0, 1),
        seed: int | None = 0,
    ) -> None:
        self.ids, self.newline, self.batch_size, self.seed = ids, newline, batch_size, seed
        self.starts, self.lengths = line_spans(ids, newline, seq_len)
        if not len(self.starts):
            raise CharRNNError("the text holds no lines to train or evaluate on", "items")
        self.epoch = -1
        self.shuffle(0)
        self.rank, self.world = shard
        if len(self.batches[-1]) < self.world:
            raise CharRNNError(
                f"{len(self.starts)} lines make a batch too small to share among {self.world} processes; "
                "give more lines or lower nproc",
                "batch_size",
            )
        self.rows = batch_size // self.world
        self.steps_per_epoch = len(self.batches)

    carries_state = False  # every row is a line of its own, from the reset state

    def resets(self, i: int) -> None:
        return None

    def shuffle(self, epoch: int) -> None:
        """Deal the rows into batches for this epoch: a permutation drawn from (seed, epoch), so a
        resumed run sees the same order; seed None (evaluation): sorted by length."""
        if epoch == self.epoch:
            return
        self.epoch = epoch
        if self.seed is None:
            order = np.argsort(self.lengths, kind="stable")
        else:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.starts))
        self.batches = np.array_split(order, -(-len(order) // self.batch_size))

    def __len__(self) -> int:
        return self.steps_per_epoch

    def predicted(self, i: int) -> int:
        return int(self.lengths[self.batches[i]].sum())

    def get(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of batch i (this process's rows), each (rows, longest) int64."""
        rows = np.array_split(self.batches[i], self.world)[self.rank]
        width = int(self.lengths[rows].max())
        x = np.zeros((len(rows), width), dtype=np.int64)
        y = np.full((len(rows), width), IGNORE, dtype=np.int64)
        for r, (start, length) in enumerate(zip(self.starts[rows].tolist(), self.lengths[rows].tolist(), strict=True)):
            span = self._span(start, length)
            x[r, :length], y[r, :length] = span[:-1], span[1:]
        return torch.from_numpy(x), torch.from_numpy(y)

    def _span(self, start: int, length: int) -> np.ndarray:
        """ext[start : start + length + 1], ext being the ids with a newline in front."""
        if start == 0:
            return np.concatenate([[self.newline], np.asarray(self.ids[:length], dtype=np.int64)])
        return np.asarray(self.ids[start - 1 : start + length], dtype=np.int64)


def item_config(cfg: SampleConfig) -> SampleConfig:
    """A lines run's sampling settings: each sample ends at its newline."""
    return replace(cfg, stop=[*cfg.stop, "\n"])


def sample_settings(cfg: SampleConfig, out: SampleOutput) -> tuple[SampleConfig, str, str]:
    """A lines run's sampling: each sample ends at its newline, and samples print one per line.
    Returns the config, the separator between samples and the text after the last one."""
    separator = (
        "\n" if out.separator == SampleOutput.__dataclass_fields__["separator"].default else out.separator_text()
    )
    return item_config(cfg), separator, "\n"
