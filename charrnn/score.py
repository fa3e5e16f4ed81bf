"""Scoring a text under a model: every token's log-probability, each line's, and the units' activations.

One library for `charrnn score` and the server's /v1/score and /v1/activations.

- Start: the first token is predicted from the state after a newline (the state a line starts
  from), so every token of the text gets a log-probability. A model whose vocabulary has no
  newline starts from the zero state, and the first token is predicted from that state's output.
- Bits per character: evaluate.py's one formula. Every token is predicted here, so it is the
  summed nats / characters / ln 2.
- Tokens and characters: `start` is the character offset of the token's first byte (for a byte or
  SentencePiece byte-fallback token inside a multi-byte character, the character it belongs to);
  `text` holds the characters the token completes: a byte that begins a character has text "",
  the byte that ends it carries the whole character. The texts of all tokens join to the text.
  A top-k guess that is not whole UTF-8 is shown as its bytes, "<0xE2>".
- Long texts run through the model in chunks of CHUNK_TOKENS with the state carried, so memory
  stays bounded whatever the length.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from charrnn.cells import LSTMVariant, step_equations
from charrnn.errors import CharRNNError
from charrnn.evaluate import CHUNK_TOKENS, bits_per_char
from charrnn.model import CharRNN, HalfStepper, State
from charrnn.runtime import autocast
from charrnn.tokenizers import Tokenizer

LINE_BATCH_TOKENS = 16384  # padded tokens per batch of lines
LSTM_KINDS = ("hidden", "cell", "input", "forget", "cell_gate", "output")


@dataclass
class TokenScore:
    start: int  # character offset in the text
    text: str
    logprob: float  # nats
    top: list[tuple[str, float]]  # the model's top-k guesses for this position: (text, probability)


@dataclass
class ScoreResult:
    tokens: list[TokenScore]
    nats: float  # summed over every token
    characters: int

    @property
    def bits_per_char(self) -> float:
        n = len(self.tokens)
        return bits_per_char(self.nats / n, n, self.characters) if n else 0.0

    def summary(self) -> dict:
        return {
            "characters": self.characters,
            "tokens": len(self.tokens),
            "nats": self.nats,
            "bits_per_char": self.bits_per_char,
        }

    def to_dict(self) -> dict:
        tokens = [asdict(t) | {"top": [list(g) for g in t.top]} for t in self.tokens]
        return self.summary() | {"tokens": tokens}  # the list in place of the count


@dataclass
class LineScore:
    line: int  # 1-based
    characters: int  # the newline included
    nats: float
    bits_per_char: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Activations:
    layer: int
    kind: str
    tokens: list[tuple[int, str]]  # (character offset, token text)
    values: np.ndarray = field(repr=False)  # float16 (positions, units): after reading each token

    def to_dict(self) -> dict:
        data = self.values.astype("<f2", copy=False).tobytes()
        return {
            "layer": self.layer,
            "kind": self.kind,
            "units": int(self.values.shape[1]),
            "tokens": [list(t) for t in self.tokens],
            "dtype": "float16",
            "shape": list(self.values.shape),
            "data": base64.b64encode(data).decode("ascii"),
        }


# -- running the model -----------------------------------------------------------------------------


class _Runner:
    """Next-token log-probabilities of (rows, time) inputs, chunk by chunk, the state carried.

    fp32 (and autocast dtypes on a GPU) run the model's forward; fp16 on the CPU steps HalfStepper."""

    def __init__(self, model: CharRNN, device: torch.device, precision: str) -> None:
        self.model, self.device = model, device
        if precision == "auto":
            precision = "fp16" if HalfStepper.supports(model.cfg.cell, device) else "fp32"
        self.half = model.stepper("fp16") if precision == "fp16" and device.type == "cpu" else None
        self.dtype = torch.float16 if precision == "fp16" and device.type != "cpu" else None

    def start(self, rows: int, newline: int | None) -> tuple[State, torch.Tensor | None]:
        """The state after a newline, or the zero state and its own prediction (no newline in the vocabulary)."""
        state = self.model.init_state(rows, self.device)
        if newline is not None:
            return state, None
        return state, F.log_softmax(self.model.head(state[0][-1]).float(), -1)[:, None]

    def __call__(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """x (rows, time) -> log-probabilities (rows, time, vocab) of the next token, and the state."""
        if self.half is None:
            with autocast(self.device, self.dtype):
                logits, state = self.model(x, state)
            return F.log_softmax(logits.float(), -1), state
        states, out = self.half.split(state), []
        for t in range(x.shape[1]):
            logits, states = self.half(x[:, t], states)
            out.append(logits)
        n = self.model.cfg.layers
        stacked = (
            (torch.stack(states[:n]), torch.stack(states[n:])) if self.model.cell_state else (torch.stack(states),)
        )
        return F.log_softmax(torch.stack(out, 1).float(), -1), stacked


def _newline(tokenizer: Tokenizer) -> int | None:
    ids = tokenizer.encode("\n", unknown="skip")
    return int(ids[0]) if len(ids) == 1 else None


def _inputs(ids: np.ndarray, newline: int | None) -> np.ndarray:
    """The input before each target: the newline, then the text; without a newline the first target has none."""
    return np.concatenate([[newline], ids[:-1]]) if newline is not None else ids[:-1]


def _token_logprobs(run: _Runner, ids: np.ndarray, newline: int | None, top_k: int, chunk: int):
    """Each token's log-probability (n,) and the top-k log-probabilities and ids (n, k), in chunks."""
    state, first = run.start(1, newline)
    pieces = [] if first is None else [first[0]]
    inputs = torch.as_tensor(_inputs(ids, newline).astype(np.int64), device=run.device)
    for i in range(0, len(inputs), chunk):
        logp, state = run(inputs[None, i : i + chunk], state)
        pieces.append(logp[0])
    out_logp, top_p, top_i = [], [], []
    targets = torch.as_tensor(ids.astype(np.int64), device=run.device)
    offset = 0
    for logp in pieces:  # one chunk's (time, vocab) at a time keeps memory bounded
        out_logp.append(logp.gather(1, targets[offset : offset + len(logp), None])[:, 0])
        if top_k:
            p, idx = logp.topk(min(top_k, logp.shape[1]), -1)
            top_p.append(p)
            top_i.append(idx)
        offset += len(logp)
    cat = lambda xs: torch.cat(xs).cpu().numpy() if xs else np.zeros((0, 0))  # noqa: E731
    return cat(out_logp).astype(np.float64), np.exp(cat(top_p)), cat(top_i)


# -- tokens and character offsets ------------------------------------------------------------------


def _offsets(tokenizer: Tokenizer, text: str, ids: np.ndarray) -> list[tuple[int, str]]:
    """(start, text) of each token (see the module docstring)."""
    char_ends = np.cumsum([len(c.encode("utf-8", errors="surrogatepass")) for c in text])
    token_ends = np.cumsum([len(tokenizer.pieces[i]) for i in ids.tolist()])
    done = np.searchsorted(char_ends, np.concatenate([[0], token_ends]), side="right").tolist()
    return [(done[j], text[done[j] : done[j + 1]]) for j in range(len(ids))]


def _piece_text(piece: bytes) -> str:
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<0x{b:02X}>" for b in piece)


def _encode(tokenizer: Tokenizer, text: str) -> np.ndarray:
    if not text:
        raise CharRNNError("the text is empty; there is nothing to score", "text")
    ids = tokenizer.encode(text)
    if len(ids) == 0:
        raise CharRNNError("the text encodes to no tokens; there is nothing to score", "text")
    return ids


def _device(model: CharRNN, device: torch.device | str | None) -> torch.device:
    return torch.device(device) if device is not None else model.head.weight.device


# -- the three entry points ------------------------------------------------------------------------


@torch.inference_mode()
def score_text(
    model: CharRNN,
    tokenizer: Tokenizer,
    text: str,
    *,
    top_k: int = 5,
    device: torch.device | str | None = None,
    precision: str = "fp32",
    chunk_tokens: int = CHUNK_TOKENS,
) -> ScoreResult:
    """Every token's log-probability (nats) and the model's top_k guesses at its position."""
    if top_k < 0:
        raise CharRNNError(f"top_k must be 0 or more, got {top_k}", "top_k")
    model.eval()
    ids = _encode(tokenizer, text)
    run = _Runner(model, _device(model, device), precision)
    logp, top_p, top_i = _token_logprobs(run, ids, _newline(tokenizer), top_k, chunk_tokens)
    name = functools.cache(lambda i: _piece_text(tokenizer.pieces[i]))
    tokens = []
    for j, (start, piece) in enumerate(_offsets(tokenizer, text, ids)):
        top = [(name(i), p) for p, i in zip(top_p[j].tolist(), top_i[j].tolist(), strict=True)] if top_k else []
        tokens.append(TokenScore(start, piece, float(logp[j]), top))
    return ScoreResult(tokens, -float(logp.sum()), len(text))


def _line_batches(lines: Iterable[str], tokenizer: Tokenizer, newline: int | None):
    """Lines (number, characters, ids), in batches of at most LINE_BATCH_TOKENS padded tokens."""
    batch: list[tuple[int, int, np.ndarray]] = []
    for number, line in enumerate(lines, 1):
        line = line.removesuffix("\n") + ("\n" if newline is not None else "")
        try:
            ids = tokenizer.encode(line)
        except CharRNNError as e:
            raise CharRNNError(f"line {number}: {e}", *e.fields) from None
        longest = max([len(ids), *(len(b[2]) for b in batch)])
        if batch and longest * (len(batch) + 1) > LINE_BATCH_TOKENS:
            yield batch
            batch = []
        batch.append((number, len(line), ids))
    if batch:
        yield batch


def _picked(run: _Runner, inputs: np.ndarray, targets: np.ndarray, newline: int | None) -> np.ndarray:
    """The targets' log-probabilities (rows, time), running the inputs in time chunks of bounded size."""
    state, first = run.start(len(inputs), newline)
    step = max(1, LINE_BATCH_TOKENS // len(inputs))
    x, y = (torch.as_tensor(a, device=run.device) for a in (inputs, targets))
    out = []
    for t in range(0, x.shape[1], step):
        logp, state = run(x[:, t : t + step], state)
        if t == 0 and first is not None:  # no newline: the first token comes from the zero state's own prediction
            logp = torch.cat([first, logp[:, 1:]], 1)
        out.append(logp.gather(2, y[:, t : t + step, None])[..., 0].double())
    return torch.cat(out, 1).cpu().numpy()


@torch.inference_mode()
def score_lines(
    model: CharRNN,
    tokenizer: Tokenizer,
    lines: Iterable[str],
    *,
    device: torch.device | str | None = None,
    precision: str = "fp32",
) -> Iterator[LineScore]:
    """Each line scored on its own from the state after a newline, its newline included: lines rank fairly.

    Lines run as the rows of a batch, padded at their ends (a recurrent model reads left to right,
    so the padding after a line cannot change its score)."""
    model.eval()
    run = _Runner(model, _device(model, device), precision)
    newline = _newline(tokenizer)
    for batch in _line_batches(lines, tokenizer, newline):
        width = max(len(ids) for _, _, ids in batch)
        inputs = np.zeros((len(batch), width), dtype=np.int64)
        targets = np.zeros((len(batch), width), dtype=np.int64)
        for r, (_, _, ids) in enumerate(batch):
            inputs[r, : len(ids)] = _inputs(ids, newline) if newline is not None else [0, *ids[:-1]]
            targets[r, : len(ids)] = ids
        picked = _picked(run, inputs, targets, newline)
        for r, (number, chars, ids) in enumerate(batch):
            nats = -float(picked[r, : len(ids)].sum())
            bpc = bits_per_char(nats / len(ids), len(ids), chars) if len(ids) else 0.0
            yield LineScore(number, chars, nats, bpc)


def _check_layer_kind(model: CharRNN, layer: int, kind: str) -> int:
    n = model.cfg.layers
    if not -n <= layer < n:
        raise CharRNNError(f"layer must be 0 to {n - 1} (or -1 for the top one), got {layer}", "layer")
    kinds = LSTM_KINDS if model.cell_state else ("hidden",)
    if kind not in kinds:
        raise CharRNNError(
            f"kind {kind!r} is not one the {model.cfg.cell} cell has; choose from {', '.join(kinds)}", "kind"
        )
    return layer % n


def _gates(model: CharRNN, layer: int, x: torch.Tensor, h_prev: torch.Tensor, c_prev: torch.Tensor) -> dict:
    """An LSTM layer's gates at every step, from the layer's weights, its input and the previous h and c.

    Returns h and c too, computed anew: they agree with the network's own (a test checks)."""
    w_ih, w_hh, b1, b2 = model.spec.step_weights(model.rnn, layer)
    if isinstance(model.rnn, LSTMVariant):  # one bias, then the peepholes
        bias, peep, coupled = b1, b2, model.rnn.coupled
    else:  # nn.LSTM: two biases, gate order i, f, g, o
        bias, peep, coupled = b1 + b2, None, False
    a = torch.addmm(torch.addmm(bias, x, w_ih.t()), h_prev, w_hh.t())
    h, c, acts = step_equations(a, c_prev, peep, coupled)
    parts = acts.chunk(3 if coupled else 4, 1)
    i, (f, g, o) = (1.0 - parts[0], parts) if coupled else (parts[0], parts[1:])
    return {"hidden": h, "cell": c, "input": i, "forget": f, "cell_gate": g, "output": o}


@torch.inference_mode()
def activations(
    model: CharRNN,
    tokenizer: Tokenizer,
    text: str,
    *,
    layer: int,
    kind: str = "hidden",
    device: torch.device | str | None = None,
) -> Activations:
    """Each unit's value of `kind` in `layer` (0-based; -1 is the top one) after reading each token,
    from the state after a newline. Every cell has "hidden"; LSTMs also "cell" and the gates
    "input", "forget", "cell_gate", "output" (CIFG's input gate is 1 - forget)."""
    layer = _check_layer_kind(model, layer, kind)
    model.eval()
    ids = _encode(tokenizer, text)
    dev = _device(model, device)
    step, n = model.stepper("fp32"), model.cfg.layers
    states = step.split(model.init_state(1, dev))
    newline = _newline(tokenizer)
    if newline is not None:
        _, states = step(torch.tensor([newline], device=dev), states)
    start = states
    seen: list[list[torch.Tensor]] = []
    for x in torch.as_tensor(ids.astype(np.int64), device=dev).split(1):
        _, states = step(x, states)
        seen.append(states)
    rows = lambda j: torch.cat([s[j] for s in seen])  # noqa: E731
    if kind == "hidden" or kind == "cell":
        values = rows(layer if kind == "hidden" else n + layer)
    else:
        below = model.embed.weight[torch.as_tensor(ids.astype(np.int64), device=dev)] if layer == 0 else rows(layer - 1)
        h_prev = torch.cat([start[layer], rows(layer)[:-1]])
        c_prev = torch.cat([start[n + layer], rows(n + layer)[:-1]])
        values = _gates(model, layer, below, h_prev, c_prev)[kind]
    tokens = _offsets(tokenizer, text, ids)
    return Activations(layer, kind, tokens, values.float().cpu().numpy().astype(np.float16))


def read_text(path: str, encoding: str = "utf-8") -> str:
    """A file's text (any codec, as training reads it), or stdin's for "-"."""
    return "".join(read_lines(path, encoding))


def read_lines(path: str, encoding: str = "utf-8") -> Iterator[str]:
    """A file's lines (or stdin's for "-"), newlines kept, read as they are scored."""
    from charrnn import data

    if path == "-":
        yield from data.read_stdin_text(encoding).splitlines(keepends=True)
        return
    try:
        for block in data.read_file_text(Path(path), "strict", encoding):
            yield from block.splitlines(keepends=True)
    except OSError as e:
        raise CharRNNError(f"cannot read {path}: {e.strerror or e}") from None
