"""Samples while training (`train --sample-every`) and `charrnn timelapse`: how a model learned to write.

At each sampling step the trainer draws a short sample from the current weights, always from the same
prime and at the same temperature, and appends it to the run's samples.jsonl; `charrnn timelapse`
prints them in order, so one reads the model going from noise to letters, words, names and lines.
A sample draws its randomness from its own generator, seeded from the run's seed and the step: the
training's random stream is untouched, and a resumed run writes the samples a straight one would.
A line of samples.jsonl is `SampleRecord.to_json()`; its keys are spelled here only. No torch at import.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charrnn.config import SampleConfig, TrainConfig
from charrnn.errors import CharRNNError
from charrnn.metrics import JsonLine, metrics_file

if TYPE_CHECKING:
    import torch

    from charrnn.model import CharRNN
    from charrnn.tokenizers import Tokenizer

log = logging.getLogger("charrnn")

SAMPLES_FILE = "samples.jsonl"


@dataclass
class SampleRecord(JsonLine):
    """One stage: where training stood, and what the model wrote from the prime then."""

    ensure_ascii = False  # samples are text in any script: kept readable in samples.jsonl
    step: int
    chars: int  # training characters seen so far
    prime: str
    text: str  # generated text, without the prime
    settings: dict[str, Any] = field(default_factory=dict)  # length, temperature, seed
    val_loss: float | None = None  # nats per token, where this step was evaluated
    val_bpc: float | None = None

    def header(self) -> str:
        """'step 200 · 51,200 chars seen · val 1.830 nats/token (2.640 bits/char)'."""
        parts = [f"step {self.step:,}", f"{self.chars:,} chars seen"]
        if self.val_loss is not None:
            bpc = f" ({self.val_bpc:.3f} bits/char)" if self.val_bpc is not None else ""
            parts.append(f"val {self.val_loss:.3f} nats/token{bpc}")
        return " · ".join(parts)


def due(cfg: TrainConfig, step: int, evaluated: bool) -> bool:
    """Whether training samples at this step: at each evaluation by default, every N steps, or never (0)."""
    if cfg.sample_every is None:
        return evaluated
    return cfg.sample_every > 0 and step % cfg.sample_every == 0


def sample_seed(run_seed: int, step: int) -> int:
    """The seed of the sample at `step`: the same on every run with this seed, another at every step."""
    return (run_seed * 1_000_003 + step) % 2**63


def draw(model: CharRNN, tokenizer: Tokenizer, cfg: TrainConfig, step: int, device: torch.device) -> SampleRecord:
    """A sample from the model's current weights (fp32 steps, its own generator); the model is left in
    the mode it was in. The caller fills in where training stands."""
    from charrnn.sample import generate

    settings = {"length": cfg.sample_length, "temperature": cfg.sample_temp, "seed": sample_seed(cfg.seed, step)}
    sample_cfg = SampleConfig(
        length=cfg.sample_length,
        temperature=cfg.sample_temp,
        prime=cfg.sample_prime,
        seed=settings["seed"],
        unknown="skip",  # a prime character the corpus lacks must not stop the training
        precision="fp32",
    )
    was_training = model.training
    try:
        (sample,) = generate(model, tokenizer, sample_cfg, device)
    finally:
        model.train(was_training)
    return SampleRecord(step=step, chars=0, prime=cfg.sample_prime, text=sample.text, settings=settings)


def append(run_dir: Path, record: SampleRecord) -> None:
    """Add the record to the run's samples.jsonl and show it on stderr (through the logger)."""
    with open(run_dir / SAMPLES_FILE, "a", encoding="utf-8") as f:
        f.write(record.to_json() + "\n")
    log.info("sample at %s:\n%s%s", record.header(), record.prime, record.text)


def samples_file(run: str | Path) -> Path:
    """A run folder's samples.jsonl; a checkpoint in the folder or the file itself also do."""
    path = Path(run)
    return path if path.suffix == ".jsonl" else metrics_file(path).parent / SAMPLES_FILE


def read_samples(run: str | Path) -> list[SampleRecord]:
    """The stages of a run in order of step. A run resumed from an earlier checkpoint than its last
    sample appends records for steps it already had: the later records replace those from there on."""
    file = samples_file(run)
    if not file.is_file():
        raise CharRNNError(f"no {SAMPLES_FILE} in {run}; train with sample_every (on by default) first", "sample_every")
    stages: list[SampleRecord] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = SampleRecord.from_json(line)
        except (ValueError, TypeError) as e:
            raise CharRNNError(f"{file}:{number} is not a sample record: {e}") from None
        stages = [s for s in stages if s.step < record.step] + [record]
    if not stages:
        raise CharRNNError(f"{file} holds no samples yet")
    return stages


def render(stages: list[SampleRecord]) -> str:
    """The stages as text: a header line each, then the prime and what followed it."""
    return "".join(f"── {s.header()} ──\n{s.prime}{s.text}\n\n" for s in stages)


def render_jsonl(stages: list[SampleRecord]) -> str:
    return "".join(s.to_json() + "\n" for s in stages)
