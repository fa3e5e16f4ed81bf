"""Decoding: temperature, top-k, top-p, repetition penalty, greedy, and beam search.

Each strategy is a small function over next-token logits; one loop drives them for any number
of samples at once. Text leaves through `TextSink`s that echo the prime, count characters,
honour stop strings and hand finished text to a callback as soon as it is final.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from charrnn.config import SampleConfig
from charrnn.model import CharRNN, State
from charrnn.tokenizers import StreamDecoder, Tokenizer, decode

# -- strategies: logits (batch, vocab) -> logits ------------------------------------------------


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return logits / temperature


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


def pick(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Sample one id per row by inverse CDF from pre-drawn uniforms (one generator per sample)."""
    probs = logits.float().softmax(-1)
    cdf = probs.cumsum(-1)
    u = uniforms.unsqueeze(-1) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).squeeze(-1).clamp_(max=logits.shape[-1] - 1)


# -- text out -----------------------------------------------------------------------------------


class TextSink:
    """One sample's text: echoes the prime, stops at `length` characters or a stop string,
    and passes on only text that is final (a possible start of a stop string is held back)."""

    def __init__(self, tokenizer: Tokenizer, length: int, stop: list[str], emit: Callable[[str], None] | None) -> None:
        self.decoder = StreamDecoder(tokenizer)
        self.length, self.stop, self.emit = length, stop, emit
        self.hold = max((len(s) for s in stop), default=1) - 1
        self.pending = ""  # generated text not yet passed on
        self.text = ""  # generated text passed on
        self.done = length == 0

    def feed(self, ids: list[int]) -> None:
        if self.done:
            return
        self.pending += self.decoder.feed(ids)
        for s in self.stop:
            cut = (self.text[-len(s) + 1 :] if len(s) > 1 else "") + self.pending
            at = cut.find(s)
            if at >= 0:
                self.pending = cut[:at][len(cut) - len(self.pending) :] if at >= len(cut) - len(self.pending) else ""
                self.done = True
        room = self.length - len(self.text)
        if len(self.pending) >= room:
            self.pending, self.done = self.pending[:room], True
        keep = 0 if self.done else min(self.hold, len(self.pending))
        self._out(self.pending[: len(self.pending) - keep])
        self.pending = self.pending[len(self.pending) - keep :]

    def finish(self) -> None:
        if not self.done:
            self.pending += self.decoder.flush()
            self._out(self.pending[: self.length - len(self.text)])
            self.pending = ""
        self.done = True

    def _out(self, text: str) -> None:
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


def _prime_ids(tokenizer: Tokenizer, cfg: SampleConfig, generator: torch.Generator) -> torch.Tensor:
    if cfg.prime:
        ids = tokenizer.encode(cfg.prime, unknown=cfg.unknown)
        if len(ids):
            return torch.as_tensor(ids, dtype=torch.long)
    # No prime: start as if at the beginning of a line, or at a random token if there are no lines.
    newline = tokenizer.encode("\n", unknown="skip")
    if len(newline):
        return torch.as_tensor(newline, dtype=torch.long)
    return torch.randint(tokenizer.vocab_size, (1,), generator=generator)


def _run_prime(model: CharRNN, prime: torch.Tensor, rows: int, device: torch.device) -> tuple[torch.Tensor, State]:
    """Feed the prime in one call of the sequence kernel; returns the next-token logits and state."""
    with torch.inference_mode():
        state = model.init_state(1, device)
        logits, state = model(prime[None].to(device), state)
        last = logits[:, -1]
    return last.expand(rows, -1).contiguous(), tuple(s.expand(-1, rows, -1).contiguous() for s in state)


def generate(
    model: CharRNN,
    tokenizer: Tokenizer,
    cfg: SampleConfig,
    device: torch.device | str = "cpu",
    emit: Callable[[int, str], None] | None = None,
) -> list[Sample]:
    """Generate `num_samples` texts (or beam search's n best); `emit(i, text)` streams them.

    Sample i draws its randomness from its own generator seeded `seed + i`, so a batch of
    samples equals the same number of single runs with seeds seed, seed+1, ...
    """
    device = torch.device(device)
    model.eval()
    seed = cfg.seed if cfg.seed is not None else int(torch.randint(2**31 - 1, ()).item())
    if cfg.beam is not None:
        return beam_search(model, tokenizer, cfg, device, seed, emit)
    n = cfg.num_samples
    generators = [torch.Generator().manual_seed(seed + i) for i in range(n)]
    prime = _prime_ids(tokenizer, cfg, generators[0])
    logits, state = _run_prime(model, prime, n, device)
    sinks = [TextSink(tokenizer, cfg.length, cfg.stop, (lambda t, i=i: emit(i, t)) if emit else None) for i in range(n)]
    seen = torch.zeros(n, tokenizer.vocab_size, dtype=torch.bool, device=device)
    if cfg.prime:
        seen[:, prime.to(device)] = True
    logprob = torch.zeros(n, dtype=torch.float64, device=device)
    greedy = cfg.temperature == 0 or cfg.top_k == 1
    sync_every = 1 if device.type == "cpu" else 16  # GPU: fewer host syncs, streaming in small blocks
    pending: list[torch.Tensor] = []
    uniforms = torch.empty(n, 0)
    t0 = time.perf_counter()
    with torch.inference_mode():
        while not all(s.done for s in sinks):
            if uniforms.shape[1] == 0 and not greedy:
                uniforms = torch.stack([torch.rand(256, generator=g) for g in generators]).to(device)
            filtered = apply_repetition_penalty(logits, seen, cfg.repetition_penalty)
            if greedy:
                ids = filtered.argmax(-1)
            else:
                filtered = apply_top_p(apply_top_k(apply_temperature(filtered, cfg.temperature), cfg.top_k), cfg.top_p)
                ids, uniforms = pick(filtered, uniforms[:, 0]), uniforms[:, 1:]
            logprob += logits.float().log_softmax(-1).gather(1, ids[:, None]).squeeze(1).double()
            seen.scatter_(1, ids[:, None], True)
            pending.append(ids)
            if len(pending) >= sync_every:
                block = torch.stack(pending, 1).tolist()
                pending.clear()
                for sink, row in zip(sinks, block, strict=False):
                    sink.feed(row)
            logits, state = model.step(ids, state)
    for sink in sinks:
        sink.finish()
    elapsed = time.perf_counter() - t0
    settings = asdict(cfg) | {"seed": seed}
    return [
        Sample(s.text, cfg.prime, float(logprob[i]), seed + i, len(s.text) / max(elapsed, 1e-9), settings)
        for i, s in enumerate(sinks)
    ]


def beam_search(
    model: CharRNN,
    tokenizer: Tokenizer,
    cfg: SampleConfig,
    device: torch.device,
    seed: int,
    emit: Callable[[int, str], None] | None,
) -> list[Sample]:
    """K hypotheses advanced as one batch, ranked by total log-probability.

    A hypothesis is finished when its text reaches `length` characters or a stop string;
    finished ones are ranked by log-prob / characters ** length_penalty. Text that every live
    and finished hypothesis shares is streamed as soon as it is known.
    """
    k = cfg.beam
    prime = _prime_ids(tokenizer, cfg, torch.Generator().manual_seed(seed))
    logits, state = _run_prime(model, prime, 1, device)
    live: list[list[int]] = [[]]
    chars = [0]  # characters begun so far, per live hypothesis: bytes that start a UTF-8 sequence
    piece_chars = [sum((b & 0xC0) != 0x80 for b in p) for p in tokenizer.pieces]
    tail = 4 * max((len(s) for s in cfg.stop), default=0) + 3
    scores = torch.zeros(1, dtype=torch.float64, device=device)
    finished: list[tuple[float, float, str, list[int]]] = []  # (rank, log-prob, text, ids)
    shared = TextSink(tokenizer, cfg.length, cfg.stop, (lambda t: emit(0, t)) if emit else None)
    shared_len = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        while live and len(finished) < k:
            total = (scores[:, None] + logits.double().log_softmax(-1)).flatten()
            top = torch.topk(total, min(2 * k, total.numel()))
            rows, next_live, next_chars, next_scores = [], [], [], []
            for score, flat in zip(top.values.tolist(), top.indices.tolist(), strict=False):
                row, tok = divmod(flat, logits.shape[-1])
                n_chars = chars[row] + piece_chars[tok]
                if len(rows) == k and n_chars < cfg.length and not cfg.stop:
                    continue
                ids = live[row] + [tok]
                if n_chars >= cfg.length or (cfg.stop and any(s in decode(tokenizer, ids[-tail:]) for s in cfg.stop)):
                    text = _finished_text(tokenizer, ids, cfg)
                    finished.append((score / max(1, len(text)) ** cfg.length_penalty, score, text, ids))
                elif len(rows) < k:
                    rows.append(row), next_live.append(ids), next_chars.append(n_chars), next_scores.append(score)
            live, chars = next_live, next_chars
            common = _common_prefix(live + [f[3] for f in finished])
            if common > shared_len:
                shared.feed((live or [f[3] for f in finished])[0][shared_len:common])
                shared_len = common
            if not live:
                break
            index = torch.tensor(rows, device=device)
            state = tuple(s.index_select(1, index) for s in state)
            scores = torch.tensor(next_scores, dtype=torch.float64, device=device)
            logits, state = model.step(torch.tensor([t[-1] for t in live], device=device), state)
    finished.sort(key=lambda f: f[0], reverse=True)
    best = finished[: cfg.n_best]
    if best and emit:  # the rest of the winner; what was streamed is a prefix of every hypothesis
        emit(0, best[0][2][len(shared.text) :])
    elapsed = time.perf_counter() - t0
    settings = asdict(cfg) | {"seed": seed}
    return [
        Sample(text, cfg.prime, logprob, seed, len(text) / max(elapsed, 1e-9), settings) for _, logprob, text, _ in best
    ]


def _finished_text(tokenizer: Tokenizer, ids: list[int], cfg: SampleConfig) -> str:
    """A finished hypothesis's text, cut at the first stop string and at the length."""
    text = decode(tokenizer, ids)
    for stop in cfg.stop:
        if (at := text.find(stop)) >= 0:
            text = text[:at]
    return text[: cfg.length]


def _common_prefix(seqs: list[list[int]]) -> int:
    if not seqs:
        return 0
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != first[i] for s in seqs):
            return i
    return n
