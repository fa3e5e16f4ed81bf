"""Plain-data configuration, one dataclass per concern; the training ones are saved inside every checkpoint.

Each field is the one declaration of a setting: its type, default, help text, help panel, allowed values and,
where they differ from the field name, its command-line flags (`setting(...)` metadata). charrnn.options
derives the CLI options from these fields. This module imports no torch, so `--help` answers at once.
Each dataclass checks its own values and raises CharRNNError naming the field to fix.
"""

from __future__ import annotations

import codecs
import math
import re
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from charrnn.errors import CharRNNError
from charrnn.registry import CELL_INFO, TOKENIZER_INFO

TOKENIZERS = tuple(TOKENIZER_INFO)
CELLS = tuple(CELL_INFO)
LSTM_CELLS = tuple(name for name, info in CELL_INFO.items() if info.cell_state)  # the cells whose state is (h, c)
DEVICE_HELP = "auto, cpu, cuda or cuda:N; auto picks a GPU when there is one."

ENCODING_HELP = (
    "The text's encoding: any Python codec (utf-8, latin-1, cp1252, gb18030, shift_jis, utf-16, ...); "
    "a UTF-8 or UTF-16 byte-order mark at the start of a file is recognised and dropped."
)
ITEMS_HELP = (
    "text: one continuous stream; lines: every line is an independent item (names, titles): training "
    "starts each line from a reset state, sampling writes one line per sample."
)

# Help panels of `charrnn train --help`.
DATA, MODEL, TRAIN, RUN = "Data", "Model", "Training", "Run"
SAMPLES = "Samples while training"


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    flags: tuple[str, ...] = (),
    panel: str | None = None,
    choices: tuple[str, ...] = (),
    shown: str | None = None,
    factory: Any = MISSING,
    **cli: Any,
) -> Any:
    """A dataclass field that carries its CLI declaration as metadata.

    flags: the option names when they are not --field-name; choices: the allowed values (checked by the
    dataclass); shown: the default as --help words it, when the value alone says too little.
    Further keys, read by charrnn.options: argument (a positional argument), metavar, required, parse (a
    named parser for the text typed, e.g. "duration"), cli_default (the CLI's own default, e.g. None for
    "not given"), cli=False (no option at all).
    """
    meta = {"help": help, "flags": flags, "panel": panel, "choices": choices, "shown": shown, **cli}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _check_choice(obj: object, name: str) -> None:
    """The field's value is one of the choices its setting declares."""
    value, choices = getattr(obj, name), obj.__dataclass_fields__[name].metadata["choices"]  # type: ignore[attr-defined]
    if value not in choices:
        raise CharRNNError(f"{name} must be one of {', '.join(choices)}; got {value!r}", name)


def _check_positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and value <= 0:
            raise CharRNNError(f"{name} must be positive, got {value}", name)


def parse_duration(text: str) -> float:
    """'90s', '10m', '1.5h', '1h30m' or plain seconds -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CharRNNError(f"cannot read duration {text!r}; write it like 90s, 10m or 1h30m")
    return sum(float(n) * units[u] for n, u in parts)


def check_encoding(obj: object, name: str = "encoding") -> None:
    """The field names a text codec Python knows (not a bytes-to-bytes one such as base64)."""
    value = getattr(obj, name)
    try:
        known = codecs.lookup(value)._is_text_encoding  # type: ignore[attr-defined]
    except (LookupError, TypeError):
        known = False
    if not known:
        raise CharRNNError(
            f"{name} {value!r} is not a text codec Python knows; try utf-8, latin-1, cp1252, gb18030, shift_jis "
            "or utf-16",
            name,
        )


# What a field's `parse` metadata names: how the text given for it becomes its value.
PARSERS = {"duration": parse_duration}


@dataclass
class DataConfig:
    sources: list[str] = setting(
        help="Text files, folders (every text file below, sorted) or - for stdin.",
        argument=True,
        metavar="CORPUS",
        cli_default=None,
    )
    val_file: str | None = setting(None, "Validate on this file instead of the end of the corpus.", panel=DATA)
    val_frac: float = setting(0.1, "Fraction of the corpus, from its end, held out for validation.", panel=DATA)
    tokenizer: str = setting(
        "char",
        "; ".join(f"{name}: {info.help}" for name, info in TOKENIZER_INFO.items())
        + " (SentencePiece: trained on the corpus).",
        panel=DATA,
        choices=TOKENIZERS,
    )
    vocab_size: int = setting(2000, "Vocabulary size for bpe/unigram.", panel=DATA)
    encoding_errors: str = setting(
        "strict",
        "strict stops at invalid UTF-8; replace goes on with U+FFFD.",
        panel=DATA,
        choices=("strict", "replace"),
    )
    cache_dir: str = setting("data/cache", "Where tokenized corpora are cached.", panel=DATA)
    encoding: str = setting("utf-8", ENCODING_HELP, panel=DATA)
    items: str = setting("text", ITEMS_HELP, panel=DATA, choices=("text", "lines"))

    def __post_init__(self) -> None:
        if not self.sources:
            raise CharRNNError("no corpus given; name a text file, a folder, or - for stdin")
        _check_choice(self, "tokenizer")
        if not 0.0 < self.val_frac < 1.0 and self.val_file is None:
            raise CharRNNError(f"val_frac must be between 0 and 1, got {self.val_frac}", "val_frac")
        if TOKENIZER_INFO[self.tokenizer].uses_vocab_size and self.vocab_size < 300:
            raise CharRNNError(
                f"vocab_size must be at least 300 for {self.tokenizer}, got {self.vocab_size}", "vocab_size"
            )
        _check_choice(self, "encoding_errors")
        check_encoding(self)
        _check_choice(self, "items")


@dataclass
class ModelConfig:
    vocab_size: int = setting(cli=False)
    cell: str = setting(
        "lstm",
        "Cell: " + "; ".join(f"{name}: {info.help}" for name, info in CELL_INFO.items()) + ".",
        flags=("--model",),
        panel=MODEL,
        choices=CELLS,
    )
    hidden_size: int = setting(384, "Units per recurrent layer.", panel=MODEL)
    embed_size: int = setting(128, "Size of the token embedding.", panel=MODEL)
    layers: int = setting(2, "Stacked recurrent layers.", panel=MODEL)
    dropout: float = setting(0.2, "Dropout between layers and before the output.", panel=MODEL)
    tie_weights: bool = setting(
        False, "Share the embedding and output matrices (needs --embed-size = --hidden-size).", panel=MODEL
    )
    forget_bias: float = setting(
        0.0, "Initial forget-gate bias of the LSTM cells (1 is the classic recipe).", panel=MODEL
    )
    # How the network was trained to begin a text, so every reader begins it the same way: "newline",
    # from the reset state with a newline fed first (documents, lines); "reset", from the reset state
    # with the text's first token (every checkpoint made before documents, which holds no such field).
    start: str = setting("reset", cli=False, choices=("reset", "newline"))

    def __post_init__(self) -> None:
        _check_choice(self, "cell")
        _check_choice(self, "start")
        _check_positive(self, "vocab_size", "hidden_size", "embed_size", "layers")
        if not 0.0 <= self.dropout < 1.0:
            raise CharRNNError(f"dropout must be in [0, 1), got {self.dropout}", "dropout")
        if self.tie_weights and self.embed_size != self.hidden_size:
            raise CharRNNError(
                f"tie_weights needs embed_size equal to hidden_size ({self.embed_size} != {self.hidden_size})",
                "tie_weights",
                "embed_size",
                "hidden_size",
            )


@dataclass
class TrainConfig:
    # Defaults chosen for the best validation loss in 10-30 minutes on a small CPU
    # (bench/defaults_sweep.py; results in bench/results/defaults_sweep.json).
    batch_size: int = setting(16, "Parallel streams per step.", panel=TRAIN)
    seq_len: int = setting(128, "Tokens per stream per step: the truncated-BPTT window.", panel=TRAIN)
    lr: float = setting(3e-3, "Peak AdamW learning rate (warm-up, then cosine decay).", panel=TRAIN)
    min_lr_frac: float = setting(0.1, cli=False)  # the cosine schedule ends at lr * min_lr_frac
    warmup_steps: int = setting(200, "Steps of linear learning-rate warm-up.", panel=TRAIN)
    weight_decay: float = setting(0.01, "AdamW weight decay on weight matrices.", panel=TRAIN)
    grad_clip: float = setting(1.0, "Clip the gradient norm to this; 0 turns clipping off.", panel=TRAIN)
    max_steps: int | None = setting(None, "Stop after this many steps.", panel=TRAIN, shown="none")
    epochs: float | None = setting(
        None, "Stop after this many passes over the corpus.", panel=TRAIN, shown="10 when no other limit is given"
    )
    time_budget: float | None = setting(  # seconds
        None, "Stop after this much training time, e.g. 90s, 10m, 1h30m.", panel=TRAIN, shown="none", parse="duration"
    )
    size: str | None = setting(
        None,
        "auto: measure this machine's speed for a few model sizes and fit layers, hidden size, dropout, batch "
        "and learning rate to --time-budget (options given explicitly win); default: the fixed defaults.",
        panel=TRAIN,
        choices=("auto", "default"),
        shown="auto with --time-budget and no --hidden-size/--layers, else default",
    )
    eval_every: int = setting(500, "Evaluate on the whole validation split every N steps.", panel=TRAIN)
    save_every: int | None = setting(
        None, "Also write last.pt every N steps.", panel=TRAIN, shown="at each evaluation only"
    )
    log_every: int = setting(50, "Log metrics every N steps.", panel=TRAIN)
    seed: int = setting(1337, "Random seed; with --threads, fixes a CPU run exactly.", panel=TRAIN)
    device: str = setting("auto", DEVICE_HELP, panel=TRAIN)
    precision: str = setting(
        "auto",
        "auto, fp32, bf16 or fp16 (GPU) autocast; weights stay fp32. "
        "auto: bf16 on GPUs and CPUs with native bf16, else fp32.",
        panel=TRAIN,
        choices=("auto", "fp32", "bf16", "fp16"),
    )
    compile: bool = setting(False, "Compile the model with torch.compile.", panel=TRAIN)
    threads: int | None = setting(
        None,
        "CPU threads for training. none: every core, and fewer while fewer train faster (another program "
        "busy on a core); a number fixes them, and with the seed the run.",
        panel=TRAIN,
        shown="adaptive",
    )
    tensorboard: bool = setting(
        False, "Also write TensorBoard event files into the run folder (needs tensorboard).", panel=RUN
    )
    sample_every: int | None = setting(
        None,
        "Write a short sample from the current weights to samples.jsonl (and stderr) every N steps and at "
        "the end; 0 turns it off. `charrnn timelapse RUN` shows them in order.",
        panel=SAMPLES,
        shown="at each evaluation",
    )
    sample_length: int = setting(200, "Characters per sample while training.", panel=SAMPLES)
    sample_prime: str = setting(
        "", "Text every sample while training starts from (the same at each stage).", panel=SAMPLES, shown="none"
    )
    sample_temp: float = setting(0.8, "Temperature of the samples while training; 0 is greedy.", panel=SAMPLES)
    keep_every: int | None = setting(
        None,
        "Keep a snapshot step-N.pt every N steps beside best.pt and last.pt (each is evaluated too).",
        panel=RUN,
        shown="none",
    )
    keep_last: int | None = setting(
        None, "Keep only the K newest snapshots (the oldest are deleted); 0 keeps all.", panel=RUN, shown="all"
    )

    def __post_init__(self) -> None:
        _check_positive(self, "batch_size", "seq_len", "eval_every", "log_every")
        _check_positive(self, "sample_length", "keep_every", "threads")
        for name in ("sample_every", "keep_last"):
            if (getattr(self, name) or 0) < 0:
                raise CharRNNError(f"{name} must be 0 (off) or positive, got {getattr(self, name)}", name)
        if self.sample_temp < 0 or not math.isfinite(self.sample_temp):
            raise CharRNNError(f"sample_temp must be 0 (greedy) or positive, got {self.sample_temp}", "sample_temp")
        _check_positive(self, "max_steps", "epochs", "time_budget", "save_every")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise CharRNNError(f"lr must be a positive number, got {self.lr}", "lr")
        if self.grad_clip < 0:
            raise CharRNNError(f"grad_clip must be 0 (off) or positive, got {self.grad_clip}", "grad_clip")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise CharRNNError("warmup_steps and weight_decay must not be negative", "warmup_steps", "weight_decay")
        _check_choice(self, "precision")
        if self.size is not None:
            _check_choice(self, "size")
        if self.size == "auto" and not self.time_budget:
            raise CharRNNError("size auto fits the model to time_budget; give one", "size", "time_budget")
        if self.max_steps is None and self.epochs is None and self.time_budget is None:
            self.epochs = 10


@dataclass
class RunOptions:
    """How `charrnn train` runs, beside what it trains: where to, resuming, processes, output."""

    out: str | None = setting(
        None, "Run folder.", flags=("--out", "-o"), panel=RUN, shown="checkpoints/<corpus>-<time>"
    )
    overwrite: bool = setting(False, "Allow writing into an existing run folder.", panel=RUN)
    resume: str | None = setting(
        None, "Continue the run in this folder (or from this checkpoint) where it stopped.", panel=RUN, shown=""
    )
    allow_corpus_change: bool = setting(
        False, "With --resume: accept a corpus that differs from the original.", panel=RUN
    )
    quiet: bool = setting(False, "Only warnings and errors on stderr.", flags=("--quiet", "-q"), panel=RUN)
    nproc: int = setting(
        1, "Train with N processes (torchrun, DistributedDataParallel): one per GPU, or CPU processes.", panel=TRAIN
    )
    init_from: str | None = setting(
        None,
        "Fine-tune: start a new run on the corpus from this run's (or checkpoint's) weights, model settings and "
        "tokenizer; a char vocabulary gains the corpus's new characters.",
        panel=RUN,
        shown="",
    )


@dataclass
class Shared:
    """Options several commands share: the checkpoint to read, the device, JSON output."""

    checkpoint: str | None = setting(
        None,
        "A checkpoint file or run folder.",
        flags=("--checkpoint", "-c"),
        shown="best.pt of the latest run under checkpoints/",
    )
    device: str = setting("auto", DEVICE_HELP)
    json: bool = setting(False, "Print one JSON object instead of the table.", flags=("--json",))
    encoding: str = setting("utf-8", ENCODING_HELP)
    step: int | None = setting(
        None, "The run's snapshot of this step (step-N.pt, see train --keep-every) instead of best.pt.", shown="none"
    )

    def __post_init__(self) -> None:
        check_encoding(self)


@dataclass
class SampleConfig:
    length: int = setting(
        1000, "Characters to generate per sample, the prime not counted.", flags=("--length", "--max-new-tokens", "-n")
    )
    temperature: float = setting(
        1.0,
        "Sampling temperature; lower is safer, higher is wilder; 0 is greedy.",
        flags=("--temp", "--temperature", "-t"),
    )
    top_k: int = setting(0, "Sample only from the k most likely tokens; 0 is off.")
    top_p: float = setting(
        1.0, "Sample only from the smallest set of tokens whose probability reaches p (nucleus); 1 is off."
    )
    min_p: float = setting(
        0.0, "Sample only from tokens at least p times as likely as the most likely one (min-p); 0 is off."
    )
    repetition_penalty: float = setting(1.0, "Make tokens already seen less likely (CTRL's penalty); 1 is off.")
    beam: int | None = setting(
        None,
        "Beam search with this many hypotheses (deterministic; 1 is greedy).",
        flags=("--beam", "--num-beams"),
        shown="off, sample",
    )
    length_penalty: float = setting(1.0, "Beam search: rank finished texts by log-prob / length^this.")
    n_best: int = setting(1, "Beam search: print the N best texts, their log-probs on stderr.")
    num_samples: int = setting(
        1, "Independent samples, generated together as one batch.", flags=("--num-samples", "-N")
    )
    prime: str = setting(
        "",
        "Text to start from, echoed first.",
        flags=("--prime", "-p"),
        shown="stdin when piped, else none",
        cli_default=None,
    )
    stop: list[str] = setting(help="End a sample where this string first appears (repeatable).", factory=list, shown="")
    seed: int | None = setting(None, "Random seed; sample i of a batch uses seed+i.", shown="random")
    unknown: str = setting(
        "error", "Prime characters the model never saw: error, or skip them.", choices=("error", "skip")
    )
    precision: str = setting(
        "auto",
        "Weights of each generation step: fp32 (exact), fp16 (CPU: faster at batch 1, logits within "
        "about 1e-4), or auto (fp16 on a CPU that has the kernel).",
        choices=("auto", "fp32", "fp16"),
    )

    def __post_init__(self) -> None:
        if self.length < 0:
            raise CharRNNError(f"length must be 0 or more, got {self.length}", "length")
        if self.temperature < 0 or not math.isfinite(self.temperature):
            raise CharRNNError(f"temperature must be 0 (greedy) or positive, got {self.temperature}", "temperature")
        if self.top_k < 0:
            raise CharRNNError(f"top_k must be 0 (off) or positive, got {self.top_k}", "top_k")
        if not 0.0 < self.top_p <= 1.0:
            raise CharRNNError(f"top_p must be in (0, 1], got {self.top_p}", "top_p")
        if not 0.0 <= self.min_p <= 1.0:
            raise CharRNNError(f"min_p must be in [0, 1], got {self.min_p}", "min_p")
        if self.repetition_penalty <= 0:
            raise CharRNNError(
                f"repetition_penalty must be positive, got {self.repetition_penalty}", "repetition_penalty"
            )
        if self.beam is not None and self.beam < 1:
            raise CharRNNError(f"beam must be 1 or more, got {self.beam}", "beam")
        if self.n_best != 1 and not 1 <= self.n_best <= (self.beam or 1):
            raise CharRNNError(
                f"n_best must be between 1 and beam ({self.beam or 1}), got {self.n_best}", "n_best", "beam"
            )
        if self.num_samples < 1:
            raise CharRNNError(f"num_samples must be 1 or more, got {self.num_samples}", "num_samples")
        if self.beam is not None and self.num_samples > 1:
            raise CharRNNError(
                "beam search returns one best text; use n_best instead of num_samples", "n_best", "num_samples"
            )
        _check_choice(self, "unknown")
        if any(not s for s in self.stop):
            raise CharRNNError("stop needs a non-empty string", "stop")
        _check_choice(self, "precision")


@dataclass
class SampleOutput:
    """How `charrnn sample` prints what it generates."""

    format: str = setting(
        "text",
        "text, or jsonl: one JSON object per sample with its settings and log-prob.",
        flags=("--format", "-f"),
        choices=("text", "jsonl"),
    )
    separator: str = setting("\\n\\n", "Printed between samples (escapes such as \\n are understood).")

    def __post_init__(self) -> None:
        _check_choice(self, "format")
        self.separator_text()

    def separator_text(self) -> str:
        """The separator with its escapes (\\n, \\t, ...) read."""
        try:
            return self.separator.encode().decode("unicode_escape")
        except UnicodeDecodeError:
            raise CharRNNError(f"separator has a broken escape: {self.separator!r}", "separator") from None


@dataclass
class EvalConfig:
    files: list[str] = setting(help="Text files, folders or - for stdin.", argument=True, metavar="FILE")
    unknown: str = setting(
        "skip", "Characters the model never saw: skip them (with a warning), or error.", choices=("skip", "error")
    )

    def __post_init__(self) -> None:
        _check_choice(self, "unknown")


@dataclass
class DemoConfig:
    time_budget: str = setting("60s", "Training time.")
    length: int = setting(600, "Characters to sample afterwards.", flags=("--length", "-n"))


@dataclass
class PlotConfig:
    runs: list[str] = setting(help="Run folders (or their metrics.jsonl) to overlay.", argument=True)
    output: Path = setting(Path("plot.png"), "The PNG to write.", flags=("--output", "-o"))
    size: str = setting("1200x800", "Image size in pixels, WIDTHxHEIGHT.")
    terminal: bool = setting(False, "Draw the curves as text charts on stdout instead of writing a PNG.")


@dataclass
class NoveltyConfig:
    sample_file: str = setting(help="The generated text, or - for stdin.", argument=True)
    corpus: list[str] = setting(help="The training corpus: files or folders (repeatable).", required=True, shown="")
    items: str = setting(
        "text",
        "lines: also count the sample's lines that occur as whole lines of the corpus (exact matches).",
        choices=("text", "lines"),
    )

    def __post_init__(self) -> None:
        _check_choice(self, "items")
        if "-" in self.corpus:
            raise CharRNNError("corpus must name files or folders; only the sample may come from stdin", "corpus")


@dataclass
class GradflowConfig:
    checkpoints: list[str] | None = setting(None, "Checkpoint files or run folders to measure.", argument=True)
    compare: bool = setting(False, "Measure each cell freshly initialized and after --budget of training on --corpus.")
    corpus: list[str] | None = setting(
        None,
        "Text to draw windows from (and, with --compare, to train on).",
        shown="each checkpoint's own corpus",
    )
    seq_len: int = setting(100, "T: the window; the loss at its last step is traced back to every step.")
    budget: str = setting("60s", "--compare: training time per model, e.g. 60s or 2m.")
    cells: str = setting("rnn,rnn-relu,lstm,gru", "--compare: the cells to train, comma-separated.")
    forget_bias: list[float] | None = setting(
        None,
        "--compare: LSTM forget-gate bias at initialization; repeat to compare several.",
        shown="0 and 1",
    )
    hidden_size: int = setting(128, "--compare: units per layer.")
    layers: int = setting(1, "--compare: recurrent layers.")
    batches: int = setting(4, "Batches of windows averaged over.")
    batch_size: int = setting(16, "Windows per batch.")
    seed: int = setting(1337, "Seed for the windows and for --compare's models.")
    output: Path | None = setting(None, "Also write a log-scale plot (PNG).", flags=("--output", "-o"), shown="none")

    def __post_init__(self) -> None:
        if self.compare == bool(self.checkpoints):
            raise CharRNNError("give checkpoints to measure, or compare corpus FILE (not both)", "compare", "corpus")
        if self.compare and (not self.corpus or len(self.corpus) != 1 or self.corpus[0] == "-"):
            raise CharRNNError("compare trains on one text file: pass corpus FILE", "compare", "corpus")
        if self.seq_len < 2 or self.batches < 1 or self.batch_size < 1:
            raise CharRNNError(
                "seq_len must be 2 or more, batches and batch_size positive", "seq_len", "batches", "batch_size"
            )

    def chosen_cells(self) -> list[str]:
        """The cells of --compare, checked against CELLS."""
        chosen = [c.strip() for c in self.cells.split(",") if c.strip()]
        if not chosen or any(c not in CELLS for c in chosen):
            raise CharRNNError(f"cells takes a comma-separated list of {', '.join(CELLS)}", "cells")
        return chosen


@dataclass
class ScoreConfig:
    file: str = setting(help="The text to score: a file, or - for stdin.", argument=True, metavar="FILE")
    per_line: bool = setting(
        False, "Score each line on its own, from the state after a newline: one JSON object per line, to rank lines."
    )
    top_k: int = setting(5, "Per token: the model's k most likely guesses at each position; 0 leaves them out.")
    summary: bool = setting(False, "Print only the total: characters, tokens, nats and bits per character.")
    precision: str = setting(
        "fp32",
        "Weights of the model: fp32 (exact, as charrnn eval), fp16 (CPU: fp16 weights, log-probabilities within "
        "about 1e-3), or auto (fp16 on a CPU that has the kernel).",
        choices=("auto", "fp32", "fp16"),
    )

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise CharRNNError(f"top_k must be 0 or more, got {self.top_k}", "top_k")
        if self.per_line and self.summary:
            raise CharRNNError("per_line and summary do not go together", "per_line", "summary")
        _check_choice(self, "precision")


@dataclass
class InfoConfig:
    path: str | None = setting(
        None, "A checkpoint file or run folder.", argument=True, shown="the latest run under checkpoints/"
    )


@dataclass
class ExportConfig:
    run: str = setting(help="A run folder (its best.pt) or a checkpoint file.", argument=True, metavar="RUN")
    output: Path = setting(
        Path("model.onnx"),
        "The ONNX file to write; the tokenizer goes beside it as NAME.tokenizer.json.",
        flags=("--output", "-o"),
    )


@dataclass
class TimelapseConfig:
    run: str = setting(help="A run folder (or its samples.jsonl).", argument=True, metavar="RUN")
    json: bool = setting(False, "Print the samples as JSON lines, one per stage, instead of text.", flags=("--json",))


@dataclass
class ServeConfig:
    """`charrnn serve`: the models, where to listen, the step precision and the limits on each request."""

    checkpoints: list[str] | None = setting(
        None,
        "Checkpoint files or run folders to serve (each named by its run folder).",
        argument=True,
        metavar="CHECKPOINT|RUN",
        shown="the latest run under checkpoints/",
    )
    host: str = setting("127.0.0.1", "Address to listen on; any other than 127.0.0.1 is reachable without a password.")
    port: int = setting(8000, "Port to listen on.")
    precision: str = setting(
        "auto",
        "Weights of each generation step, for every request (as charrnn sample --precision).",
        choices=("auto", "fp32", "fp16"),
    )
    threads: int | None = setting(
        None,
        "CPU threads for the models' work (generating, scoring); the rest answer requests.",
        shown="one fewer than the cores",
    )
    stream_interval: float = setting(
        0.02, "Seconds between a stream's lines after its first: text made meanwhile goes out in one line (0: at once)."
    )
    max_length: int = setting(10_000, "Limit: characters one generation request may ask for.")
    max_beams: int = setting(16, "Limit: beam width of one request.")
    max_samples: int = setting(16, "Limit: samples (num_samples) of one request.")
    max_concurrent: int = setting(64, "Limit: requests in progress at once; more are refused with 429.")
    max_text: int = setting(100_000, "Limit: characters of a prime, or of a text to score or take activations of.")
    max_body_bytes: int = setting(1_000_000, "Limit: bytes of a request body.")

    def __post_init__(self) -> None:
        _check_choice(self, "precision")
        _check_positive(
            self, "threads", "max_length", "max_beams", "max_samples", "max_concurrent", "max_text", "max_body_bytes"
        )
        if not 0 <= self.stream_interval <= 1:
            raise CharRNNError(
                f"stream_interval must be between 0 and 1 second, got {self.stream_interval}", "stream_interval"
            )
        if not 0 <= self.port <= 65535:
            raise CharRNNError(f"port must be between 0 and 65535, got {self.port}", "port")
