"""`--size auto`: fit the model to the characters this machine can train in the time budget.

What a model reaches in a budget depends on how many characters it trains in it (N) and on how
many the corpus holds (D): small models learn fastest from few characters, large ones win given
many, and many passes over a small corpus call for dropout. bench/size_sweep.py trained every
candidate for fixed N on two corpora (D of about 1M and 18M characters); LOSSES below is its table.
Here we measure each candidate's chars/s on this machine, at the precision the run will use, turn
the budget into N for each, read each candidate's loss at (N, D) off the table, and take the lowest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import Corpus
from charrnn.model import CharRNN
from charrnn.runtime import autocast

M = 1_000_000
AUTO_MODEL_FIELDS = ("layers", "hidden_size", "dropout")
AUTO_TRAIN_FIELDS = ("batch_size", "lr", "weight_decay")


@dataclass(frozen=True)
class Candidate:
    name: str
    layers: int
    hidden_size: int
    lr: float  # peak AdamW rate at batch 16: larger layers train stably only at lower rates


CANDIDATES = (
    Candidate("2x256", 2, 256, 6e-3),
    Candidate("2x384", 2, 384, 6e-3),
    Candidate("2x512", 2, 512, 4.5e-3),
    Candidate("2x768", 2, 768, 3e-3),
    Candidate("2x1024", 2, 1024, 2.25e-3),
)
BY_NAME = {c.name: c for c in CANDIDATES}
BATCH_SIZE = 16
# Half the streams, twice the updates. At equal characters batch 8 ended 0.016 below batch 16 at 4
# passes (the GPU sweep's first pass, 2x384 and 2x512); in 10 minutes on AVX2 kernels auto at batch 8
# reached 1.4087 against 1.4312 at 16, in 5.8 passes (bench/results/time_budget_avx2_10m_batch8.json).
# The batch-8 step runs at 0.86-0.91x batch 16's speed there but at 0.64x in bf16 on AMX, where a third
# fewer characters would cost more than the gain (about 0.007 per 10% of characters at 10 minutes).
# So batch 8 only where it keeps SMALL_BATCH_MIN_SPEED, and within SMALL_BATCH_MAX_PASSES (measured to
# 5.8; the probes foresaw 6.2 there, so the bound leaves room for their error).
SMALL_BATCH, SMALL_BATCH_GAIN, SMALL_BATCH_MIN_SPEED, SMALL_BATCH_MAX_PASSES = 8, 0.016, 0.8, 7.0
# AdamW decay on the weight matrices. At the 10-minute AVX2 point (2x384, 4.9M characters) 0.1 ended
# 0.019 below the 0.01 default over two seeds each, 0.2 within 0.003 of 0.1 (bench/results/recipe.json).
WEIGHT_DECAY = 0.1
PROBE_SHARE = 0.05  # of the budget, at most, spent measuring (the first candidate is always measured)


def dropout_for(chars: float, corpus_chars: float) -> float:
    """No dropout within two passes over the corpus; 0.12 more per doubling of passes, up to 0.3.
    At 4 passes 0 and 0.2 ended within 0.006 of each other and 0.3 worse (bench/results/size_sweep.json);
    at 4.6 passes 0.12 beat 0.25 by 0.006 (recipe_avx512bf16.json); at 8.8 passes 0.25 beat 0.2 by 0.008
    (time_budget_amx_dropout.json)."""
    epochs = chars / max(corpus_chars, 1.0)
    return round(min(0.3, max(0.0, 0.12 * math.log2(max(epochs, 1.0) / 2))), 2)


def candidate_settings(name: str, chars: float, corpus_chars: float) -> tuple[dict, dict]:
    """ModelConfig and TrainConfig fields of a candidate trained on `chars` of a corpus of `corpus_chars`."""
    return settings_of(BY_NAME[name], chars, corpus_chars)


def settings_of(c: Candidate, chars: float, corpus_chars: float, batch_size: int = BATCH_SIZE) -> tuple[dict, dict]:
    model = {"layers": c.layers, "hidden_size": c.hidden_size, "dropout": dropout_for(chars, corpus_chars)}
    return model, {"batch_size": batch_size, "lr": c.lr, "weight_decay": WEIGHT_DECAY}


# Best validation loss (nats/char) of each candidate after N characters of Tiny Shakespeare (a train
# split of 1.0M characters), from bench/size_sweep.py on an H100 in fp32 (bench/results/size_sweep.json).
# The 4M and 16M points of 2x384-2x768 were trained as this module trains; the 1M points and those of
# 2x256 and 2x1024 at learning rates 1.5x lower (at 4M, 0.003-0.03 worse than these rates).
LOSSES: dict[str, dict[int, float]] = {
    "2x256": {1 * M: 2.0125, 4 * M: 1.539},
    "2x384": {1 * M: 1.8108, 4 * M: 1.4286, 16 * M: 1.4218},
    "2x512": {1 * M: 1.8022, 4 * M: 1.4107, 16 * M: 1.4188},
    "2x768": {1 * M: 1.7995, 4 * M: 1.4143, 16 * M: 1.4422},
    "2x1024": {1 * M: 1.8242, 4 * M: 1.4131},
}
TABLE_CORPUS_CHARS = 1_003_854
# Loss after 4M characters of the Python standard library's sources (10.2M train characters) minus
# that of Tiny Shakespeare: how much a corpus that does not repeat helps each size.
BIG_CORPUS_CHARS = 10_218_745
BIG_CORPUS_SHIFT = {"2x384": -0.1302, "2x512": -0.1357, "2x768": -0.1552, "2x1024": -0.1642}


def _interpolate(points: dict[int, float], chars: float) -> float:
    """Piecewise linear in log N. Below the table the first slope goes on (fewer characters, worse);
    above it the last loss stays: no credit for training the sweep did not measure."""
    xs = sorted(points)
    if chars >= xs[-1]:
        return points[xs[-1]]
    i = max(1, sum(x < chars for x in xs))
    x0, x1 = xs[i - 1], xs[i]
    slope = (points[x1] - points[x0]) / (math.log(x1) - math.log(x0))
    return points[x0] + slope * (math.log(max(chars, 1.0)) - math.log(x0))


def predicted_loss(name: str, chars: float, corpus_chars: float) -> float:
    """The table's loss for `name` after `chars`, shifted toward its big-corpus value by log corpus size."""
    if name not in LOSSES:  # a size the sweep did not train: nothing to compare it with
        return math.inf
    shift = BIG_CORPUS_SHIFT.get(name, BIG_CORPUS_SHIFT["2x384"])
    t = (math.log(corpus_chars) - math.log(TABLE_CORPUS_CHARS)) / math.log(BIG_CORPUS_CHARS / TABLE_CORPUS_CHARS)
    return _interpolate(LOSSES[name], chars) + min(max(t, 0.0), 1.0) * shift


@dataclass
class Probe:
    """One candidate's measured speed on this machine and what the table expects of it in the budget."""

    name: str
    chars_per_sec: float
    chars: float
    predicted_loss: float
    batch_size: int = BATCH_SIZE


@dataclass
class Choice:
    name: str
    model: dict
    train: dict
    probes: list[Probe]
    probe_secs: float

    def to_dict(self) -> dict:
        return {
            "chosen": self.name,
            "model": self.model,
            "train": self.train,
            "probe_secs": round(self.probe_secs, 2),
            "probes": [
                {
                    "candidate": p.name,
                    "batch_size": p.batch_size,
                    "chars_per_sec": round(p.chars_per_sec),
                    "chars_in_budget": round(p.chars),
                    # None: the rule rules this batch size out (see expected_loss)
                    "predicted_loss": round(p.predicted_loss, 4) if math.isfinite(p.predicted_loss) else None,
                }
                for p in self.probes
            ],
            "source": "bench/size_sweep.py, bench/results/size_sweep.json",
        }

    @classmethod
    def from_dict(cls, d: dict) -> Choice:
        probes = [
            Probe(
                p["candidate"],
                p["chars_per_sec"],
                p["chars_in_budget"],
                math.inf if p["predicted_loss"] is None else p["predicted_loss"],
                p.get("batch_size", BATCH_SIZE),  # records written before batch 8 was probed
            )
            for p in d["probes"]
        ]
        return cls(d["chosen"], d["model"], d["train"], probes, d["probe_secs"])


def recurrent_work(c: Candidate, embed_size: int) -> int:
    """Multiply-adds per character of the recurrent layers: what sets the speed of a candidate."""
    return 4 * c.hidden_size * (embed_size + c.hidden_size) + (c.layers - 1) * 8 * c.hidden_size**2


def choose(
    measure: Callable[[dict, dict], float],
    budget_s: float,
    corpus_chars: float,
    embed_size: int,
    candidates: tuple[Candidate, ...] = CANDIDATES,
    margin: float = 0.03,
    batch_sizes: tuple[int, ...] = (BATCH_SIZE, SMALL_BATCH),
) -> Choice:
    """Measure candidates from small to large (`measure(model, train) -> chars/s`), each at every batch
    size, and keep the one expected to end lowest. A larger candidate is not measured when, even at
    the speed its work predicts from the last measured one, it is expected to end `margin` worse than
    the best so far, or when measuring it would take probing past PROBE_SHARE of the budget."""
    start = time.perf_counter()
    probes: list[Probe] = []
    by_name = {c.name: c for c in candidates}
    took = 0.0
    # A smaller batch may still bring a larger candidate within reach: where one is probed, its gain
    # widens the margin.
    reach = margin + (SMALL_BATCH_GAIN if len(batch_sizes) > 1 else 0.0)
    # The first candidate is probed with dropout on, the others with the dropout their guessed speed
    # gives them: drawing the masks costs 9% of a 2x512 bf16 step, and a probe without them
    # overstated the budget's characters, and so the dropout chosen for them.
    for c in candidates:
        if probes:
            last = next(p for p in reversed(probes) if p.batch_size == batch_sizes[0])
            ratio = recurrent_work(c, embed_size) / recurrent_work(by_name[last.name], embed_size)
            guess = last.chars_per_sec / ratio
            best = min(p.predicted_loss for p in probes)
            over_time = time.perf_counter() - start + took * ratio > PROBE_SHARE * budget_s
            hopeless = predicted_loss(c.name, guess * budget_s, corpus_chars) > best + reach
            if over_time or hopeless:
                break
        began = time.perf_counter()
        mine = []
        for batch_size in batch_sizes:
            model, train = settings_of(c, guess * budget_s if probes else math.inf, corpus_chars, batch_size)
            speed = measure(model, train)
            mine.append(
                Probe(c.name, speed, speed * max(budget_s - (time.perf_counter() - start), 0.0), 0.0, batch_size)
            )
        for p in mine:
            p.predicted_loss = expected_loss(p, mine[0], corpus_chars)
        probes += mine
        took = time.perf_counter() - began
    # Every candidate trains in what is left after all the probing.
    remaining = max(budget_s - (time.perf_counter() - start), 0.0)
    for p in probes:
        p.chars = p.chars_per_sec * remaining
    at_default = {p.name: p for p in probes if p.batch_size == batch_sizes[0]}
    for p in probes:
        p.predicted_loss = expected_loss(p, at_default[p.name], corpus_chars)
    best = min(probes, key=lambda p: p.predicted_loss)
    model, train = settings_of(by_name[best.name], best.chars, corpus_chars, best.batch_size)
    return Choice(best.name, model, train, probes, time.perf_counter() - start)


def expected_loss(p: Probe, at_default_batch: Probe, corpus_chars: float) -> float:
    """The table's loss for the probe's characters; at the small batch, SMALL_BATCH_GAIN lower where its
    conditions hold (its speed against the same size at the default batch, its passes), else inf."""
    loss = predicted_loss(p.name, p.chars, corpus_chars)
    if p is at_default_batch:
        return loss
    fast_enough = p.chars_per_sec >= SMALL_BATCH_MIN_SPEED * at_default_batch.chars_per_sec
    return loss - SMALL_BATCH_GAIN if fast_enough and p.chars <= SMALL_BATCH_MAX_PASSES * corpus_chars else math.inf


def measure_speed(
    model: torch.nn.Module,
    ids: np.ndarray,
    batch_size: int,
    seq_len: int,
    chars_per_token: float,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    seconds: float = 0.5,
) -> float:
    """Chars/s of full training steps (forward, backward, clipping, AdamW) on the corpus's first tokens,
    after one untimed step; at least two timed steps, then until `seconds` have passed."""
    need = batch_size * (seq_len + 1)
    block = torch.from_numpy(np.resize(np.asarray(ids[:need], dtype=np.int64), need)).view(batch_size, seq_len + 1)
    x, y = block[:, :-1].to(device), block[:, 1:].to(device)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    steps, start = 0, 0.0
    while steps < 3 or time.perf_counter() - start < seconds:
        if steps == 1:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        with autocast(device, autocast_dtype):
            logits, _ = model(x, None)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (steps - 1) * batch_size * seq_len * chars_per_token / (time.perf_counter() - start)


def applies(cfg: TrainConfig, model_given: Collection[str]) -> bool:
    """auto when asked, or by default when a time budget is given and no model size is."""
    if cfg.size is not None:
        return cfg.size == "auto"
    return bool(cfg.time_budget) and not {"layers", "hidden_size"} & set(model_given)


def fit(
    corpus: Corpus,
    cfg: TrainConfig,
    model_given: dict[str, Any],
    train_given: Collection[str],
    device: torch.device,
    autocast_dtype: torch.dtype | None,
) -> Choice:
    """Measure, choose, and return the settings the user left unset. With a size given (layers or
    hidden size), only that size is measured; auto then fills dropout, batch and learning rate. With a
    batch size given, only that batch size is measured."""
    base = ModelConfig(vocab_size=corpus.tokenizer.vocab_size, **model_given)

    def measure(model: dict, train: dict) -> float:
        model_cfg = replace(base, **{k: v for k, v in model.items() if k not in model_given})
        batch_size = cfg.batch_size if "batch_size" in train_given else train["batch_size"]
        split = corpus.train
        # Half a second per candidate in a ten-minute budget; less in shorter ones.
        seconds = min(1.0, (cfg.time_budget or 0.0) / 1200)
        model = CharRNN(model_cfg)
        return measure_speed(
            model, split.ids, batch_size, cfg.seq_len, split.chars_per_token, device, autocast_dtype, seconds
        )

    candidates = CANDIDATES
    if {"layers", "hidden_size"} & model_given.keys():
        nearest = min(CANDIDATES, key=lambda c: abs(c.hidden_size - base.hidden_size))
        candidates = (replace(nearest, name="given", layers=base.layers, hidden_size=base.hidden_size),)
    batch_sizes = (cfg.batch_size,) if "batch_size" in train_given else (BATCH_SIZE, SMALL_BATCH)
    choice = choose(
        measure, cfg.time_budget or 0.0, corpus.train.n_chars, base.embed_size, candidates, batch_sizes=batch_sizes
    )
    choice.model = {k: v for k, v in choice.model.items() if k not in model_given}
    choice.train = {k: v for k, v in choice.train.items() if k not in train_given}
    return choice
