"""Plain-data configuration, one dataclass per concern, saved inside every checkpoint.

This module imports no torch, so the CLI can show defaults in --help instantly. Each
dataclass checks its own values and raises CharRNNError with the option name to fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from charrnn.errors import CharRNNError
from charrnn.registry import CELL_INFO, TOKENIZER_INFO

TOKENIZERS = tuple(TOKENIZER_INFO)
CELLS = tuple(CELL_INFO)
LSTM_CELLS = tuple(name for name, info in CELL_INFO.items() if info.cell_state)  # the cells whose state is (h, c)


@dataclass
class DataConfig:
    sources: list[str]
    val_file: str | None = None
    val_frac: float = 0.1
    tokenizer: str = "char"
    vocab_size: int = 2000  # SentencePiece only
    encoding_errors: str = "strict"  # or "replace"
    cache_dir: str = "data/cache"

    def __post_init__(self) -> None:
        if not self.sources:
            raise CharRNNError("no corpus given; name a text file, a folder, or - for stdin")
        if self.tokenizer not in TOKENIZERS:
            raise CharRNNError(f"unknown tokenizer {self.tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")
        if not 0.0 < self.val_frac < 1.0 and self.val_file is None:
            raise CharRNNError(f"--val-frac must be between 0 and 1, got {self.val_frac}")
        if TOKENIZER_INFO[self.tokenizer].uses_vocab_size and self.vocab_size < 300:
            raise CharRNNError(f"--vocab-size must be at least 300 for {self.tokenizer}, got {self.vocab_size}")
        if self.encoding_errors not in ("strict", "replace"):
            raise CharRNNError("--encoding-errors must be 'strict' or 'replace'")


@dataclass
class ModelConfig:
    vocab_size: int
    cell: str = "lstm"
    hidden_size: int = 384
    embed_size: int = 128
    layers: int = 2
    dropout: float = 0.2
    tie_weights: bool = False
    forget_bias: float = 0.0  # added to the forget-gate bias of the LSTM cells at initialization

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise CharRNNError(f"unknown model {self.cell!r}; choose one of {', '.join(CELLS)}")
        for name in ("vocab_size", "hidden_size", "embed_size", "layers"):
            if getattr(self, name) <= 0:
                raise CharRNNError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise CharRNNError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.tie_weights and self.embed_size != self.hidden_size:
            raise CharRNNError(
                f"--tie-weights needs --embed-size equal to --hidden-size ({self.embed_size} != {self.hidden_size})"
            )


@dataclass
class TrainConfig:
    # Defaults chosen for the best validation loss in 10-30 minutes on a 2-core CPU
    # (bench/defaults_sweep.py; results in bench/results/defaults_sweep.json, README "Benchmarks").
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    min_lr_frac: float = 0.1  # the cosine schedule ends at lr * min_lr_frac
    warmup_steps: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # 0 turns clipping off
    max_steps: int | None = None
    epochs: float | None = None
    time_budget: float | None = None  # seconds
    eval_every: int = 500
    save_every: int | None = None
    log_every: int = 50
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    compile: bool = False
    tensorboard: bool = False  # also write TensorBoard event files into the run folder

    def __post_init__(self) -> None:
        for name in ("batch_size", "seq_len", "eval_every", "log_every"):
            if getattr(self, name) <= 0:
                raise CharRNNError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("max_steps", "epochs", "time_budget", "save_every"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise CharRNNError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise CharRNNError(f"--lr must be a positive number, got {self.lr}")
        if self.grad_clip < 0:
            raise CharRNNError(f"--grad-clip must be 0 (off) or positive, got {self.grad_clip}")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise CharRNNError("--warmup-steps and --weight-decay must not be negative")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise CharRNNError(f"--precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.max_steps is None and self.epochs is None and self.time_budget is None:
            self.epochs = 10


@dataclass
class SampleConfig:
    length: int = 1000  # generated characters per sample, the prime not counted
    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    repetition_penalty: float = 1.0  # 1 = off
    beam: int | None = None  # None samples; K runs beam search with K hypotheses (1 = greedy)
    length_penalty: float = 1.0  # beam score = log-prob / length ** length_penalty
    n_best: int = 1
    num_samples: int = 1
    prime: str = ""
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    unknown: str = "error"  # or "skip": characters a char model never saw
    precision: str = "auto"  # the generation step's weights: auto (fp16 on a CPU that has the kernel), fp32, fp16

    def __post_init__(self) -> None:
        if self.length < 0:
            raise CharRNNError(f"--length must be 0 or more, got {self.length}")
        if self.temperature < 0 or not math.isfinite(self.temperature):
            raise CharRNNError(f"--temp must be 0 (greedy) or positive, got {self.temperature}")
        if self.top_k < 0:
            raise CharRNNError(f"--top-k must be 0 (off) or positive, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise CharRNNError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise CharRNNError(f"--repetition-penalty must be positive, got {self.repetition_penalty}")
        if self.beam is not None and self.beam < 1:
            raise CharRNNError(f"--beam must be 1 or more, got {self.beam}")
        if self.n_best != 1 and not 1 <= self.n_best <= (self.beam or 1):
            raise CharRNNError(f"--n-best must be between 1 and --beam ({self.beam or 1}), got {self.n_best}")
        if self.num_samples < 1:
            raise CharRNNError(f"--num-samples must be 1 or more, got {self.num_samples}")
        if self.beam is not None and self.num_samples > 1:
            raise CharRNNError("beam search returns one best text; use --n-best instead of --num-samples")
        if self.unknown not in ("error", "skip"):
            raise CharRNNError("--unknown must be 'error' or 'skip'")
        if any(not s for s in self.stop):
            raise CharRNNError("--stop needs a non-empty string")
        if self.precision not in ("auto", "fp32", "fp16"):
            raise CharRNNError(f"--precision must be auto, fp32 or fp16, got {self.precision!r}")
