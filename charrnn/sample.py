"""Decoding: repetition penalty, temperature, top-k, top-p, min-p, greedy, and beam search.

Each strategy is a pure function over next-token logits plus its one SampleConfig field, listed once in
STRATEGIES; one loop drives them for any number
of samples at once. Text leaves through `TextSink`s that echo the prime, count characters,
honour stop strings and hand finished text to a callback as soon as it is final.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from charrnn.config import SampleConfig
from charrnn.model import CharRNN, HalfStepper, Stepper
from charrnn.tokenizers import StreamDecoder, Tokenizer, decode

# -- strategies: logits (batch, vocab) -> logits ------------------------------------------------


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return logits if temperature == 1.0 else logits / temperature


def apply_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, -math.inf)


def apply_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches p (the nucleus)."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    # A token stays if the mass before it is still below p; the most likely always stays.
    drop = probs.cumsum(-1) - probs >= p
    drop[..., 0] = False
    return logits.masked_fill(drop.scatter(-1, order, drop), -math.inf)


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty (Keskar et al. 2019): seen tokens' logits are divided (or, if negative, multiplied)."""
    if penalty == 1.0:
        return logits
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def apply_min_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep tokens at least p times as likely as the most likely one (min-p; HF's MinPLogitsWarper)."""
    if p <= 0.0:
        return logits
    probs = logits.float().softmax(-1)
    return logits.masked_fill(probs < p * probs.amax(-1, keepdim=True), -math.inf)


Strategy = Callable[[torch.Tensor, float, torch.Tensor], torch.Tensor]

# Each strategy once, in the order applied: the SampleConfig field that sets it, and its function of
# (logits, that field's value, seen-token mask). Min-p follows temperature, as in transformers.
STRATEGIES: tuple[tuple[str, Strategy], ...] = (
    ("repetition_penalty", lambda logits, value, seen: apply_repetition_penalty(logits, seen, value)),
    ("temperature", lambda logits, value, seen: apply_temperature(logits, value)),
    ("top_k", lambda logits, value, seen: apply_top_k(logits, int(value))),
    ("top_p", lambda logits, value, seen: apply_top_p(logits, value)),
    ("min_p", lambda logits, value, seen: apply_min_p(logits, value)),
)


def pick(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Sample one id per row by inverse CDF from pre-drawn uniforms (one generator per sample)."""
    probs = logits.float().softmax(-1)
    cdf = probs.cumsum(-1)
    u = uniforms.unsqueeze(-1) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).squeeze(-1).clamp_(max=logits.shape[-1] - 1)


# -- well-formed UTF-8 from byte tokens ------------------------------------------------------

# States of a UTF-8 decoder (Unicode Table 3-7): 0 is "between characters"; the others name the
# range the next byte must fall in and the state after it.
_UTF8_NEXT = {1: (0x80, 0xBF, 0), 2: (0x80, 0xBF, 1), 3: (0x80, 0xBF, 2), 4: (0xA0, 0xBF, 1), 5: (0x80, 0x9F, 1)}
_UTF8_NEXT |= {6: (0x90, 0xBF, 2), 7: (0x80, 0x8F, 2)}
_UTF8_LEAD = {0xE0: 4, 0xED: 5, 0xF0: 6, 0xF4: 7}


def _utf8_step(state: int, byte: int) -> int:
    """The decoder's next state, or -1 when the byte cannot come next."""
    if state:
        lo, hi, after = _UTF8_NEXT[state]
        return after if lo <= byte <= hi else -1
    if byte < 0x80:
        return 0
    if byte in _UTF8_LEAD:
        return _UTF8_LEAD[byte]
    return 1 if 0xC2 <= byte <= 0xDF else 2 if 0xE1 <= byte <= 0xEF else 3 if 0xF1 <= byte <= 0xF3 else -1


class Utf8Guard:
    """Lets byte-level tokens (the byte tokenizer, SentencePiece's byte fallback) form only
    well-formed UTF-8, so a sample never shows U+FFFD for a byte sequence the model broke off.
    One table lookup per step, on the device: no host sync."""

    def __init__(self, pieces: list[bytes], device: torch.device) -> None:
        table = []
        for state in range(8):
            row = []
            for piece in pieces:
                s = state
                for byte in piece:
                    s = _utf8_step(s, byte) if s >= 0 else -1
                row.append(s)
            table.append(row)
        self.table = torch.tensor(table, dtype=torch.long, device=device)  # (state, token) -> state
        self.blocked = self.table < 0

    @classmethod
    def for_pieces(cls, pieces: list[bytes], device: torch.device) -> Utf8Guard | None:
        """A guard for a vocabulary with single-byte tokens above ASCII; None when it has none."""
        return cls(pieces, device) if any(len(p) == 1 and p[0] >= 0x80 for p in pieces) else None

    def mask(self, logits: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return logits.masked_fill(self.blocked[state], -math.inf)

    def advance(self, state: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.table[state, ids]


# -- text out -----------------------------------------------------------------------------------


class TextSink:
    """One sample's text: stops at `length` characters or a stop string, and passes on only text
    that is final (a possible start of a stop string is held back). Sums the log-probabilities
    of the tokens it took while live."""

    def __init__(self, tokenizer: Tokenizer, length: int, stop: list[str], emit: Callable[[str], None] | None) -> None:
        self.decoder = StreamDecoder(tokenizer)
        self.length, self.stop, self.emit = length, stop, emit
        self.hold = max((len(s) for s in stop), default=1) - 1
        # Generated text not yet passed on. Holding `hold` characters back means a stop string
        # always lies wholly inside it, so it is the only place to search.
        self.pending = ""
        self.text = ""  # generated text passed on
        self.logprob = 0.0
        self.done = length == 0

    def feed(self, ids: list[int], logprobs: list[float]) -> None:
        """Take the next tokens (and their log-probabilities) one by one until done."""
        for i, lp in zip(ids, logprobs, strict=True):
            if self.done:
                break
            self.logprob += lp
            self._add(self.decoder.feed((i,)))
        keep = 0 if self.done else min(self.hold, len(self.pending))
        self._out(len(self.pending) - keep)

    def finish(self) -> None:
        if not self.done:
            self._add(self.decoder.flush())
            self.done = True
        self._out(len(self.pending))

    def _add(self, piece: str) -> None:
        self.pending += piece
        hits = [at for s in self.stop if (at := self.pending.find(s)) >= 0]
        if hits:
            self.pending, self.done = self.pending[: min(hits)], True
        room = self.length - len(self.text)
        if len(self.pending) >= room:
            self.pending, self.done = self.pending[:room], True

    def _out(self, n: int) -> None:
        text, self.pending = self.pending[:n], self.pending[n:]
        if text:
            self.text += text
            if self.emit:
                self.emit(text)


@dataclass
class Sample:
    text: str  # generated text, without the prime
    prime: str
    logprob: float  # sum of the model's log-probabilities of the generated tokens (temperature 1)
    seed: int | None
    chars_per_sec: float
    settings: dict


# -- the generation loops -----------------------------------------------------------------------


def step_precision(cfg: SampleConfig, model: CharRNN, device: torch.device) -> str:
    """The generation step's weights: auto is fp16 where HalfStepper runs, 2-3x the fp32 step's
    speed at batch 1, else fp32. An fp16 the model cannot run is refused by HalfStepper."""
    if cfg.precision == "auto":
        return "fp16" if HalfStepper.supports(model.cfg.cell, device) else "fp32"
    return cfg.precision


def prime_ids(
    tokenizer: Tokenizer, cfg: SampleConfig, generator: torch.Generator, newline_first: bool = False
) -> torch.Tensor:
    """The ids fed before sampling. newline_first (a model that reads every text after a newline,
    CharRNN.newline_first, or a lines run): a newline, then the prime, as in training."""
    newline = tokenizer.encode("\n", unknown="skip")
    if cfg.prime:
        ids = tokenizer.encode(cfg.prime, unknown=cfg.unknown)
        if newline_first:
            ids = np.concatenate([newline, ids]).astype(np.int64)
        if len(ids):
            return torch.as_tensor(ids, dtype=torch.long)
    # No prime: start as if at the beginning of a line, or at a random token if there are no lines.
    if len(newline):
        return torch.as_tensor(newline, dtype=torch.long)
    return torch.randint(tokenizer.vocab_size, (1,), generator=generator)


def primed(prime: torch.Tensor, cfg: SampleConfig, newline_first: bool) -> torch.Tensor:
    """The prime's own ids among those prime_ids feeds (not the newline put first): what counts as seen."""
    if not cfg.prime:
        return prime[:0]
    return prime[1:] if newline_first else prime


# Primes up to this many tokens are fed by the stepper, one token at a time; longer ones by one call of
# the sequence kernel, which on the CPU pays a fixed cost per call (oneDNN reorders the weights) that
# a short prime does not amortize. Joining a served batch is mostly feeding a short prime.
STEPPED_PRIME = 32


def _start(
    model: CharRNN,
    cfg: SampleConfig,
    prime: torch.Tensor,
    rows: int,
    device: torch.device,
    step: Stepper | HalfStepper | None = None,
) -> tuple[torch.Tensor, Stepper | HalfStepper, list[torch.Tensor], str]:
    """Feed the prime, then hand over to the stepper (made here, or `step`, one made before at cfg's
    precision). Returns the next-token logits for `rows` copies, the stepper, its states and its precision."""
    precision = step_precision(cfg, model, device)
    step = step or model.stepper(precision)
    prime = prime.to(device)
    if len(prime) <= STEPPED_PRIME:
        logits, states = feed_primes(model, step, prime[None])
    else:
        with torch.inference_mode():
            logits, state = model(prime[None], model.init_state(1, device))
        logits, states = logits[:, -1], step.split(state)
    states = [s.expand(rows, -1).contiguous() for s in states]
    return logits.expand(rows, -1).contiguous(), step, states, precision


def feed_primes(
    model: CharRNN, step: Stepper | HalfStepper, primes: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Step primes of one length (rows of `primes`, on the model's device) from the initial state
    together: the next-token logits and the stepper's states, a row per prime."""
    with torch.inference_mode():
        states = step.split(model.init_state(primes.shape[0], primes.device))
        for tokens in primes.unbind(1):
            logits, states = step(tokens, states)
    return logits, states


def generate(
    model: CharRNN,
    tokenizer: Tokenizer,
    cfg: SampleConfig,
    device: torch.device | str = "cpu",
    emit: Callable[[int, str], None] | None = None,
    lines: bool = False,
) -> list[Sample]:
    """Generate `num_samples` texts (or beam search's n best); `emit(i, text)` streams them.

    lines: the model was trained with items lines, so each sample starts from the reset state with a
    newline fed (the prime after it), as every training line did; ending it at a newline is cfg's stop.
    A model trained on documents (CharRNN.newline_first) starts the same way.
    Sample i draws its randomness from its own generator seeded `seed + i`, so a batch of
    samples equals the same number of single runs with seeds seed, seed+1, ...
    """
    device = torch.device(device)
    model.eval()
    seed = cfg.seed if cfg.seed is not None else int(torch.randint(2**31 - 1, ()).item())
    if cfg.beam is not None:
        return beam_search(model, tokenizer, cfg, device, seed, emit, lines)
    n = cfg.num_samples
    generators = [torch.Generator().manual_seed(seed + i) for i in range(n)]
    first = lines or model.newline_first
    prime = prime_ids(tokenizer, cfg, generators[0], first)
    logits, step, states, precision = _start(model, cfg, prime, n, device)
    sinks = [TextSink(tokenizer, cfg.length, cfg.stop, (lambda t, i=i: emit(i, t)) if emit else None) for i in range(n)]
    seen = torch.zeros(n, tokenizer.vocab_size, dtype=torch.bool, device=device)
    guard = Utf8Guard.for_pieces(tokenizer.pieces, device)
    utf8 = torch.zeros(n, dtype=torch.long, device=device)
    seen[:, primed(prime, cfg, first).to(device)] = True
    # Steps between host syncs: the text streams in blocks this long, short enough not to be seen.
    block = 8 if device.type == "cpu" else 32
    draws = Draws(generators, device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        while not all(s.done for s in sinks):
            chosen, chosen_logits = [], []
            for _ in range(min(block, max(cfg.length - len(s.text) - len(s.pending) for s in sinks))):
                ids, utf8 = choose_step(logits, seen, draws.next(), cfg, guard, utf8)
                chosen.append(ids)
                chosen_logits.append(logits)
                logits, states = step(ids, states)
            _feed(sinks, chosen, chosen_logits)
    for sink in sinks:
        sink.finish()
    elapsed = time.perf_counter() - t0
    settings = asdict(cfg) | {"seed": seed, "precision": precision}
    return [
        Sample(s.text, cfg.prime, s.logprob, seed + i, len(s.text) / max(elapsed, 1e-9), settings)
        for i, s in enumerate(sinks)
    ]


class Draws:
    """Each sample's uniforms from its own generator, drawn 256 at a time, so a sample's numbers never
    depend on how the steps are grouped or on the company it keeps: blocks of steps here, rows joining
    and leaving the server's shared batch in charrnn.engine (`plus`, `only`).

    Rows may be at different points of their 256: until the next row runs out, the coming draws of
    every row are gathered once into a window, so a step takes one column of it."""

    def __init__(
        self,
        generators: list[torch.Generator],
        device: torch.device,
        table: torch.Tensor | None = None,
        used: torch.Tensor | None = None,
    ) -> None:
        self.generators, self.device = list(generators), device
        self.table = self._drawn(self.generators) if table is None else table  # row x its current 256
        self.used = torch.zeros(len(generators), dtype=torch.long, device=device) if used is None else used
        self.window = self.table[:, :0]  # row x its next draws, up to the first refill
        self.taken = 0  # columns of the window taken

    def plus(self, generators: list[torch.Generator]) -> Draws:
        """These rows and new ones, one per generator."""
        used = torch.cat([self._used(), torch.zeros(len(generators), dtype=torch.long, device=self.device)])
        return Draws(self.generators + generators, self.device, torch.cat([self.table, self._drawn(generators)]), used)

    def only(self, rows: list[int]) -> Draws:
        """These rows alone, in this order."""
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        return Draws([self.generators[r] for r in rows], self.device, self.table[index], self._used()[index])

    def next(self) -> torch.Tensor:
        """One uniform per row."""
        if self.taken == self.window.shape[1]:
            self.used = self._used()
            for r in (self.used == 256).nonzero().flatten().tolist():
                self.table[r], self.used[r] = self._drawn([self.generators[r]])[0], 0
            width = 256 - int(self.used.max()) if len(self.used) else 256
            steps = torch.arange(width, device=self.device)
            self.window, self.taken = self.table.gather(1, self.used[:, None] + steps), 0
        self.taken += 1
        return self.window[:, self.taken - 1]

    def _used(self) -> torch.Tensor:
        """How many of its 256 each row has taken."""
        return self.used + self.taken

    def _drawn(self, generators: list[torch.Generator]) -> torch.Tensor:
        rows = [torch.rand(256, generator=g) for g in generators]
        return torch.stack(rows).to(self.device) if rows else torch.empty(0, 256, device=self.device)


def choose_step(
    logits: torch.Tensor,
    seen: torch.Tensor,
    uniforms: torch.Tensor,
    cfg: SampleConfig,
    guard: Utf8Guard | None,
    utf8: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's choice for some rows (each with its uniform from Draws): the next ids and the rows' new
    UTF-8 states; marks the ids seen for the repetition penalty. The one per-step function of `generate`
    and the server's engine."""
    if guard:
        ids = _choose(guard.mask(logits, utf8), seen, uniforms, cfg)
        utf8 = guard.advance(utf8, ids)
    else:
        ids = _choose(logits, seen, uniforms, cfg)
    if cfg.repetition_penalty != 1.0:
        seen.scatter_(1, ids[:, None], True)
    return ids, utf8


def _choose(logits: torch.Tensor, seen: torch.Tensor, uniforms: torch.Tensor, cfg: SampleConfig) -> torch.Tensor:
    """The next token of every row under cfg's strategies."""
    if cfg.temperature == 0 or cfg.top_k == 1:  # greedy: only the penalty can change the argmax
        return apply_repetition_penalty(logits, seen, cfg.repetition_penalty).argmax(-1)
    for name, strategy in STRATEGIES:
        logits = strategy(logits, getattr(cfg, name), seen)
    return pick(logits, uniforms)


def _feed(sinks: list[TextSink], ids: list[torch.Tensor], logits: list[torch.Tensor]) -> None:
    """Hand a block of chosen tokens, with their log-probabilities (temperature 1), to the sinks."""
    ids_ = torch.stack(ids, 1)
    logprobs = torch.stack(logits, 1).float().log_softmax(-1).gather(2, ids_[..., None]).squeeze(2)
    for sink, row, lps in zip(sinks, ids_.tolist(), logprobs.tolist(), strict=True):
        sink.feed(row, lps)


def beam_search(
    model: CharRNN,
    tokenizer: Tokenizer,
    cfg: SampleConfig,
    device: torch.device,
    seed: int,
    emit: Callable[[int, str], None] | None,
    lines: bool = False,
) -> list[Sample]:
    """K hypotheses advanced as one batch, ranked by total log-probability.

    A hypothesis is finished when its text reaches `length` characters or a stop string;
    finished ones are ranked by log-prob / characters ** length_penalty. Text that every live
    and finished hypothesis shares is streamed as soon as it is known.
    """
    prime = prime_ids(tokenizer, cfg, torch.Generator().manual_seed(seed), lines or model.newline_first)
    logits, step, states, precision = _start(model, cfg, prime, 1, device)
    beam = _Beam(tokenizer, cfg)
    scores = torch.zeros(1, dtype=torch.float64, device=device)
    guard = Utf8Guard.for_pieces(tokenizer.pieces, device)
    utf8 = torch.zeros(1, dtype=torch.long, device=device)
    shared = TextSink(tokenizer, cfg.length, cfg.stop, (lambda t: emit(0, t)) if emit else None)
    t0 = time.perf_counter()
    with torch.inference_mode():
        while beam.live and len(beam.finished) < cfg.beam:
            logprobs = logits.double().log_softmax(-1)
            total = (scores[:, None] + (guard.mask(logprobs, utf8) if guard else logprobs)).flatten()
            top = torch.topk(total, min(2 * cfg.beam, total.numel()))
            rows, last = beam.extend(top.values.cpu().numpy(), top.indices.cpu().numpy(), logits.shape[-1])
            if agreed := beam.newly_shared():
                shared.feed(agreed, [0.0] * len(agreed))
            if not len(rows):
                break
            last_ids = torch.from_numpy(last).to(device)
            scores = torch.from_numpy(beam.scores).to(device)
            if not _in_order(rows, logits.shape[0]):
                index = torch.from_numpy(rows).to(device)
                states = [s.index_select(0, index) for s in states]
                utf8 = utf8.index_select(0, index) if guard else utf8
            if guard:
                utf8 = guard.advance(utf8, last_ids)
            logits, states = step(last_ids, states)
    finished = sorted(beam.finished, key=lambda f: f[0], reverse=True)
    best = finished[: cfg.n_best]
    if best and emit:  # the rest of the winner; what was streamed is a prefix of every hypothesis
        emit(0, best[0][2][len(shared.text) :])
    elapsed = time.perf_counter() - t0
    settings = asdict(cfg) | {"seed": seed, "precision": precision}
    return [
        Sample(text, cfg.prime, logprob, seed, len(text) / max(elapsed, 1e-9), settings) for _, logprob, text, _ in best
    ]


def _in_order(rows: np.ndarray, before: int) -> bool:
    """Whether the hypotheses kept their rows (always so for beam 1): nothing to reorder."""
    return len(rows) == before and bool((rows == np.arange(before)).all())


class _Beam:
    """Beam search's bookkeeping on the host: the live hypotheses' ids as the rows of one array
    (reordered in one copy per step, no list per candidate), their characters and scores, the
    finished hypotheses, and how many leading ids all of them share."""

    def __init__(self, tokenizer: Tokenizer, cfg: SampleConfig) -> None:
        self.tokenizer, self.cfg = tokenizer, cfg
        # Characters each token begins: its bytes that start a UTF-8 sequence.
        self.piece_chars = np.array([sum((b & 0xC0) != 0x80 for b in p) for p in tokenizer.pieces])
        # Enough trailing ids to hold any stop string, even one spelled with single bytes.
        self.tail = 4 * max((len(s) for s in cfg.stop), default=0) + 3
        self.ids = np.zeros((1, max(cfg.length, 16)), dtype=np.int64)  # live hypothesis x step
        self.steps = 0  # ids each live hypothesis has
        self.live = 1
        self.chars = np.zeros(1, dtype=np.int64)  # characters begun so far, per live hypothesis
        self.scores = np.zeros(1)
        self.finished: list[tuple[float, float, str, np.ndarray]] = []  # (rank, log-prob, text, ids)
        self.shared = 0  # leading ids every hypothesis shares, already streamed
        self._finished_ids: np.ndarray | None = None  # the finished ids, cut to the shortest, stacked

    def extend(self, scores: np.ndarray, flat: np.ndarray, vocab: int) -> tuple[np.ndarray, np.ndarray]:
        """Take the best candidates (scores descending, flat = row * vocab + token): finish those
        that reach the length or a stop string, keep the first `beam` others live. Returns the
        live hypotheses' parent rows and last tokens."""
        cfg = self.cfg
        valid = scores > -math.inf  # -inf: only tokens that would break UTF-8 are left
        scores, (rows, toks) = scores[valid], np.divmod(flat[valid], vocab)
        chars = self.chars[rows] + self.piece_chars[toks]
        done = chars >= cfg.length
        if cfg.stop:
            for i in np.flatnonzero(~done).tolist():
                done[i] = self._stops(int(rows[i]), int(toks[i]))
        for i in np.flatnonzero(done).tolist():
            self._finish(float(scores[i]), int(rows[i]), int(toks[i]))
        keep = np.flatnonzero(~done)[: cfg.beam]
        rows, toks = rows[keep], toks[keep]
        self._advance(rows, toks)
        self.chars, self.scores = chars[keep], scores[keep]
        return rows, toks

    def _stops(self, row: int, tok: int) -> bool:
        ids = self.ids[row, max(0, self.steps + 1 - self.tail) : self.steps].tolist() + [tok]
        text = decode(self.tokenizer, ids)
        return any(s in text for s in self.cfg.stop)

    def _finish(self, score: float, row: int, tok: int) -> None:
        ids = np.append(self.ids[row, : self.steps], tok)
        text = _finished_text(self.tokenizer, ids.tolist(), self.cfg)
        self.finished.append((score / max(1, len(text)) ** self.cfg.length_penalty, score, text, ids))
        self._finished_ids = None

    def _advance(self, rows: np.ndarray, toks: np.ndarray) -> None:
        t, n = self.steps, len(rows)
        if t == self.ids.shape[1]:
            self.ids = np.concatenate([self.ids, np.zeros_like(self.ids)], axis=1)
        if n > self.ids.shape[0]:
            self.ids = np.concatenate([self.ids, np.zeros((n - self.ids.shape[0], self.ids.shape[1]), np.int64)])
        if not _in_order(rows, self.live):
            self.ids[:n, :t] = self.ids[rows, :t]
        self.ids[:n, t] = toks
        self.steps, self.live = t + 1, n

    def newly_shared(self) -> list[int]:
        """The ids every live and finished hypothesis now shares beyond those shared before."""
        start, live = self.shared, self.ids[: self.live]
        if self.live:
            first, end = live[0], self.steps
        elif self.finished:
            first = self.finished[0][3]
            end = len(first)
        else:
            return []
        if self.finished:
            if self._finished_ids is None:
                shortest = min(len(f[3]) for f in self.finished)
                self._finished_ids = np.stack([f[3][:shortest] for f in self.finished])
            end = min(end, self._finished_ids.shape[1])
            agree = (self._finished_ids[:, start:end] == first[start:end]).all(0)
        else:  # one live hypothesis shares all of itself
            agree = np.ones(max(0, end - start), dtype=bool)
        # Most steps the live hypotheses differ at the first unshared id: a cheap no.
        if self.live > 1 and end > start and (live[1:, start] == first[start]).all():
            agree &= (live[1:, start:end] == first[start:end]).all(0)
        elif self.live > 1:
            return []
        self.shared = start + (len(agree) if agree.all() else int(agree.argmin()))
        return first[start : self.shared].tolist()


def _finished_text(tokenizer: Tokenizer, ids: list[int], cfg: SampleConfig) -> str:
    """A finished hypothesis's text, cut at the first stop string and at the length."""
    text = decode(tokenizer, ids)
    for stop in cfg.stop:
        if (at := text.find(stop)) >= 0:
            text = text[:at]
    return text[: cfg.length]
