"""The command line: a thin typer layer over charrnn's Python API.

It parses options, hands them to the library, and turns CharRNNError into one line on stderr.
torch is imported only inside commands, so `--help` answers at once.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from charrnn.config import DataConfig, ModelConfig, SampleConfig, TrainConfig
from charrnn.errors import CharRNNError

app = typer.Typer(
    name="charrnn",
    help="Train recurrent language models (LSTM, GRU, RNN) on any text, and generate text from them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

TRAIN = "Training"
MODEL = "Model"
DATA = "Data"
RUN = "Run"


def _d(cls: type, name: str) -> str:
    """'[default: X]' read from the config dataclass, so help and behaviour never disagree."""
    return f"\\[default: {cls.__dataclass_fields__[name].default}]"


def _given(**options: object) -> dict[str, object]:
    return {k: v for k, v in options.items() if v is not None}


@app.command()
def train(
    corpus: Annotated[
        list[str] | None,
        typer.Argument(help="Text files, folders (every text file below, sorted) or - for stdin.", show_default=False),
    ] = None,
    # data
    val_file: Annotated[
        str | None, typer.Option(help="Validate on this file instead of the end of the corpus.", rich_help_panel=DATA)
    ] = None,
    val_frac: Annotated[
        float | None,
        typer.Option(
            help=f"Fraction of the corpus, from its end, held out for validation. {_d(DataConfig, 'val_frac')}",
            rich_help_panel=DATA,
            show_default=False,
        ),
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help=f"char, byte, bpe or unigram (SentencePiece, trained on the corpus). {_d(DataConfig, 'tokenizer')}",
            rich_help_panel=DATA,
            show_default=False,
        ),
    ] = None,
    vocab_size: Annotated[
        int | None,
        typer.Option(
            help=f"Vocabulary size for bpe/unigram. {_d(DataConfig, 'vocab_size')}",
            rich_help_panel=DATA,
            show_default=False,
        ),
    ] = None,
    encoding_errors: Annotated[
        str | None,
        typer.Option(
            help="strict stops at invalid UTF-8; replace goes on with U+FFFD. \\[default: strict]",
            rich_help_panel=DATA,
            show_default=False,
        ),
    ] = None,
    cache_dir: Annotated[
        str | None,
        typer.Option(
            help=f"Where tokenized corpora are cached. {_d(DataConfig, 'cache_dir')}",
            rich_help_panel=DATA,
            show_default=False,
        ),
    ] = None,
    # model
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Cell: lstm, gru, rnn (tanh), rnn-relu (identity-initialized), lstm-peephole (gates read the cell "
            f"state) or lstm-cifg (input gate = 1 - forget gate, with peepholes). {_d(ModelConfig, 'cell')}",
            rich_help_panel=MODEL,
            show_default=False,
        ),
    ] = None,
    hidden_size: Annotated[
        int | None,
        typer.Option(
            help=f"Units per recurrent layer. {_d(ModelConfig, 'hidden_size')}",
            rich_help_panel=MODEL,
            show_default=False,
        ),
    ] = None,
    embed_size: Annotated[
        int | None,
        typer.Option(
            help=f"Size of the token embedding. {_d(ModelConfig, 'embed_size')}",
            rich_help_panel=MODEL,
            show_default=False,
        ),
    ] = None,
    layers: Annotated[
        int | None,
        typer.Option(
            help=f"Stacked recurrent layers. {_d(ModelConfig, 'layers')}", rich_help_panel=MODEL, show_default=False
        ),
    ] = None,
    dropout: Annotated[
        float | None,
        typer.Option(
            help=f"Dropout between layers and before the output. {_d(ModelConfig, 'dropout')}",
            rich_help_panel=MODEL,
            show_default=False,
        ),
    ] = None,
    tie_weights: Annotated[
        bool | None,
        typer.Option(
            "--tie-weights/--no-tie-weights",
            help="Share the embedding and output matrices (needs --embed-size = --hidden-size). \\[default: no]",
            rich_help_panel=MODEL,
            show_default=False,
        ),
    ] = None,
    forget_bias: Annotated[
        float | None,
        typer.Option(
            help=f"Initial forget-gate bias of the LSTM cells (1 is the classic recipe). {_d(ModelConfig, 'forget_bias')}",
            rich_help_panel=MODEL,
            show_default=False,
        ),
    ] = None,
    # training
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=f"Parallel streams per step. {_d(TrainConfig, 'batch_size')}",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    seq_len: Annotated[
        int | None,
        typer.Option(
            help=f"Tokens per stream per step: the truncated-BPTT window. {_d(TrainConfig, 'seq_len')}",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help=f"Peak AdamW learning rate (warm-up, then cosine decay). {_d(TrainConfig, 'lr')}",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    warmup_steps: Annotated[
        int | None,
        typer.Option(
            help=f"Steps of linear learning-rate warm-up. {_d(TrainConfig, 'warmup_steps')}",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option(
            help=f"AdamW weight decay on weight matrices. {_d(TrainConfig, 'weight_decay')}",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    grad_clip: Annotated[
        float | None,
        typer.Option(
            help=f"Clip the gradient norm to this; 0 turns clipping off. {_d(TrainConfig, 'grad_clip')}",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(help="Stop after this many steps. \\[default: none]", rich_help_panel=TRAIN, show_default=False),
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option(
            help="Stop after this many passes over the corpus. \\[default: 10 when no other limit is given]",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    time_budget: Annotated[
        str | None,
        typer.Option(
            help="Stop after this much training time, e.g. 90s, 10m, 1h30m. \\[default: none]",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(
            help=f"Evaluate on the whole validation split every N steps. {_d(TrainConfig, 'eval_every')}",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    save_every: Annotated[
        int | None,
        typer.Option(
            help="Also write last.pt every N steps. \\[default: at each evaluation only]",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    log_every: Annotated[
        int | None,
        typer.Option(
            help=f"Log metrics every N steps. {_d(TrainConfig, 'log_every')}", rich_help_panel=TRAIN, show_default=False
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help=f"Random seed; fixes a CPU run exactly. {_d(TrainConfig, 'seed')}",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="auto, cpu, cuda or cuda:N; auto picks a GPU when there is one. \\[default: auto]",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="auto, fp32, bf16 or fp16 (GPU) autocast; weights stay fp32. auto: bf16 on GPUs and CPUs with native bf16, else fp32. \\[default: auto]",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="Compile the model with torch.compile. \\[default: no]",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    tensorboard: Annotated[
        bool | None,
        typer.Option(
            "--tensorboard/--no-tensorboard",
            help="Also write TensorBoard event files into the run folder (needs tensorboard). \\[default: no]",
            rich_help_panel=RUN,
            show_default=False,
        ),
    ] = None,
    nproc: Annotated[
        int | None,
        typer.Option(
            help="Train with N processes (torchrun, DistributedDataParallel): one per GPU, or CPU processes. \\[default: 1]",
            rich_help_panel=TRAIN,
            show_default=False,
        ),
    ] = None,
    # run
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Run folder. \\[default: checkpoints/<corpus>-<time>]",
            rich_help_panel=RUN,
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Allow writing into an existing run folder.", rich_help_panel=RUN)
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue the run in this folder (or from this checkpoint) where it stopped.",
            rich_help_panel=RUN,
            show_default=False,
        ),
    ] = None,
    allow_corpus_change: Annotated[
        bool, typer.Option(help="With --resume: accept a corpus that differs from the original.", rich_help_panel=RUN)
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.", rich_help_panel=RUN)
    ] = False,
) -> None:
    """Train a model on a corpus; checkpoints go to checkpoints/<run>/ (best.pt, last.pt).

    Example: charrnn train data/input.txt --time-budget 10m
    """
    console = _setup(quiet)
    if nproc and nproc > 1:
        from charrnn import distributed

        raise typer.Exit(distributed.launch(nproc, _argv_without(sys.argv[1:], "--nproc")))
    from charrnn import train as training
    from charrnn.runtime import parse_duration
    from charrnn.ui import TrainProgress

    cfg = _given(
        batch_size=batch_size,
        seq_len=seq_len,
        lr=lr,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        grad_clip=grad_clip,
        max_steps=max_steps,
        epochs=epochs,
        time_budget=parse_duration(time_budget) if time_budget else None,
        eval_every=eval_every,
        save_every=save_every,
        log_every=log_every,
        seed=seed,
        device=device,
        precision=precision,
        compile=compile,
        tensorboard=tensorboard,
    )
    model_cfg = _given(
        cell=model,
        hidden_size=hidden_size,
        embed_size=embed_size,
        layers=layers,
        dropout=dropout,
        tie_weights=tie_weights,
        forget_bias=forget_bias,
    )
    data_cfg = _given(
        val_file=val_file,
        val_frac=val_frac,
        tokenizer=tokenizer,
        vocab_size=vocab_size,
        encoding_errors=encoding_errors,
        cache_dir=cache_dir,
    )
    progress = TrainProgress(console, enabled=not quiet)
    if resume:
        if model_cfg or data_cfg:
            raise CharRNNError("--resume continues the saved model and data settings; drop the model and data options")
        result = training.resume(resume, cfg, corpus, allow_corpus_change, progress, sys.argv)
    else:
        if not corpus:
            raise CharRNNError("no corpus given; name a text file, a folder, or - for stdin (or --resume RUN)")
        result = training.train(
            DataConfig(sources=corpus, **data_cfg), model_cfg, TrainConfig(**cfg), out, overwrite, progress, sys.argv
        )
    if result.signal is not None:
        console.print(f"stopped by signal; saved {result.run_dir / 'last.pt'} at step {result.steps}")
        raise typer.Exit(128 + result.signal)
    if not quiet:
        console.print(
            f"done: {result.steps} steps, best val loss {result.best_val_loss:.4f} nats "
            f"({result.best_val_bpc:.3f} bits/char), {result.chars_per_sec:,.0f} chars/s; "
            f"saved to {result.run_dir}/"
        )


# The model to load, shared by the commands that read one checkpoint.
CheckpointOption = Annotated[
    str | None,
    typer.Option(
        "--checkpoint",
        "-c",
        help="A checkpoint file or run folder. \\[default: best.pt of the latest run under checkpoints/]",
        show_default=False,
    ),
]


@app.command()
def sample(
    checkpoint: CheckpointOption = None,
    length: Annotated[
        int,
        typer.Option(
            "--length", "--max-new-tokens", "-n", help="Characters to generate per sample, the prime not counted."
        ),
    ] = SampleConfig.length,
    temp: Annotated[
        float,
        typer.Option(
            "--temp", "--temperature", "-t", help="Sampling temperature; lower is safer, higher is wilder; 0 is greedy."
        ),
    ] = SampleConfig.temperature,
    top_k: Annotated[
        int, typer.Option(help="Sample only from the k most likely tokens; 0 is off.")
    ] = SampleConfig.top_k,
    top_p: Annotated[
        float,
        typer.Option(
            help="Sample only from the smallest set of tokens whose probability reaches p (nucleus); 1 is off."
        ),
    ] = SampleConfig.top_p,
    repetition_penalty: Annotated[
        float, typer.Option(help="Make tokens already seen less likely (CTRL's penalty); 1 is off.")
    ] = SampleConfig.repetition_penalty,
    beam: Annotated[
        int | None,
        typer.Option(
            "--beam",
            "--num-beams",
            help="Beam search with this many hypotheses (deterministic; 1 is greedy). \\[default: off, sample]",
            show_default=False,
        ),
    ] = None,
    length_penalty: Annotated[
        float, typer.Option(help="Beam search: rank finished texts by log-prob / length^this.")
    ] = SampleConfig.length_penalty,
    n_best: Annotated[
        int, typer.Option(help="Beam search: print the N best texts, their log-probs on stderr.")
    ] = SampleConfig.n_best,
    num_samples: Annotated[
        int, typer.Option("--num-samples", "-N", help="Independent samples, generated together as one batch.")
    ] = SampleConfig.num_samples,
    separator: Annotated[
        str, typer.Option(help="Printed between samples (escapes such as \\n are understood).")
    ] = "\\n\\n",
    prime: Annotated[
        str | None,
        typer.Option(
            "--prime",
            "-p",
            help="Text to start from, echoed first. \\[default: stdin when piped, else none]",
            show_default=False,
        ),
    ] = None,
    stop: Annotated[
        list[str] | None,
        typer.Option(help="End a sample where this string first appears (repeatable).", show_default=False),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Random seed; sample i of a batch uses seed+i. \\[default: random]", show_default=False),
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="text, or jsonl: one JSON object per sample with its settings and log-prob."
        ),
    ] = "text",
    unknown: Annotated[
        str, typer.Option(help="Prime characters the model never saw: error, or skip them.")
    ] = SampleConfig.unknown,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[
        str,
        typer.Option(
            help="Weights of each generation step: fp32 (exact), fp16 (CPU: 2-3x faster at batch 1, logits within "
            "about 1e-4), or auto (fp16 on a CPU that has the kernel)."
        ),
    ] = SampleConfig.precision,
) -> None:
    """Generate text from a trained model, streamed to stdout (only the text goes there).

    Examples: charrnn sample --temp 0.8 --length 2000 | head -c 200;
    echo "ROMEO:" | charrnn sample --top-p 0.9
    """
    _setup(False)
    if format not in ("text", "jsonl"):
        raise CharRNNError(f"--format must be text or jsonl, got {format!r}")
    if prime is None and not sys.stdin.isatty():
        prime = sys.stdin.read()
    cfg = SampleConfig(
        length=length,
        temperature=temp,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        beam=beam,
        length_penalty=length_penalty,
        n_best=n_best,
        num_samples=num_samples,
        prime=prime or "",
        stop=stop or [],
        seed=seed,
        unknown=unknown,
        precision=precision,
    )
    from charrnn import checkpoint as ckpts
    from charrnn import sample as sampling
    from charrnn.runtime import resolve_device
    from charrnn.ui import SampleWriter

    device_ = resolve_device(device)
    model, tok = ckpts.build_model(ckpts.load(ckpts.resolve(checkpoint)))
    model.to(device_)
    with _closed_pipe_ends_quietly():
        writer = SampleWriter(sys.stdout, format, separator.encode().decode("unicode_escape"), cfg)
        samples = sampling.generate(model, tok, cfg, device_, emit=writer.emit)
        writer.finish(samples)


@app.command()
def demo(
    time_budget: Annotated[str, typer.Option(help="Training time.")] = "60s",
    length: Annotated[int, typer.Option("--length", "-n", help="Characters to sample afterwards.")] = 600,
) -> None:
    """Train a small model on the Python standard library's own source code, then sample it.

    Needs no download: every Python installation carries this corpus.
    """
    console = _setup(False)
    from charrnn import checkpoint as ckpts
    from charrnn import data
    from charrnn import sample as sampling
    from charrnn import train as training
    from charrnn.runtime import parse_duration
    from charrnn.ui import SampleWriter, TrainProgress

    files = data.stdlib_sources()
    console.print(f"corpus: {len(files)} modules of the Python standard library in {Path(files[0]).parent}")
    result = training.train(
        DataConfig(sources=files, val_frac=0.05),
        {"hidden_size": 256, "embed_size": 64, "layers": 2, "dropout": 0.0},
        # One evaluation at the end: in a minute every second of training counts.
        TrainConfig(time_budget=parse_duration(time_budget), eval_every=10**9, warmup_steps=30, lr=5e-3),
        progress=TrainProgress(console),
        command=sys.argv,
    )
    console.print(f"best val loss {result.best_val_loss:.3f} nats ({result.best_val_bpc:.3f} bits/char); sampling:")
    model, tok = ckpts.build_model(ckpts.load(result.run_dir / "best.pt"))
    cfg = SampleConfig(length=length, temperature=0.6, prime="def ")
    with _closed_pipe_ends_quietly():
        writer = SampleWriter(sys.stdout, "text", "\n\n", cfg)
        writer.finish(sampling.generate(model, tok, cfg, emit=writer.emit))
        print(file=sys.stdout)


@app.command()
def plot(
    runs: Annotated[list[str], typer.Argument(help="Run folders (or their metrics.jsonl) to overlay.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The PNG to write.")] = Path("plot.png"),
    size: Annotated[str, typer.Option(help="Image size in pixels, WIDTHxHEIGHT.")] = "1200x800",
    terminal: Annotated[
        bool, typer.Option(help="Draw the curves as text charts on stdout instead of writing a PNG.")
    ] = False,
) -> None:
    """Plot training curves: loss against characters seen and wall time, gradient norm, learning rate.

    Example: charrnn plot checkpoints/run-a checkpoints/run-b -o runs.png
    """
    _setup(False)
    from charrnn import plot as plotting

    text = plotting.render(runs, output, plotting.parse_size(size), terminal)
    if text is not None:
        with _closed_pipe_ends_quietly():
            sys.stdout.write(text)


@app.command("eval")
def eval_(
    file: Annotated[list[str], typer.Argument(help="Text files, folders or - for stdin.")],
    checkpoint: CheckpointOption = None,
    unknown: Annotated[
        str, typer.Option(help="Characters the model never saw: skip them (with a warning), or error.")
    ] = "skip",
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Loss (nats/token), bits per character and perplexity of any text under a model.

    The text is read in blocks and fed as one sequence: the hidden state runs through the whole file.
    Example: charrnn eval held_out.txt -c checkpoints/my-run
    """
    _setup(False)
    if unknown not in ("skip", "error"):
        raise CharRNNError("--unknown must be 'skip' or 'error'")
    import json
    import tempfile

    from charrnn import checkpoint as ckpts
    from charrnn import data
    from charrnn.evaluate import evaluate_text
    from charrnn.runtime import resolve_device

    device_ = resolve_device(device)
    model, tok = ckpts.build_model(ckpts.load(ckpts.resolve(checkpoint)))
    with tempfile.TemporaryDirectory(prefix="charrnn-eval-") as spool:
        files = data.resolve_sources(file, Path(spool))
        result = evaluate_text(model.to(device_), tok, data.read_text(files), device_, unknown)
    if json_:
        print(json.dumps(result.as_dict()))
    else:
        print(
            f"{result.tokens:,} tokens, {result.chars:,} characters\n"
            f"loss        {result.nats_per_token:.4f} nats/token\n"
            f"bits/char   {result.bits_per_char:.4f}\n"
            f"perplexity  {result.perplexity:.3f} (per token)"
        )


@app.command()
def info(
    path: Annotated[
        str | None,
        typer.Argument(
            help="A checkpoint file or run folder. \\[default: the latest run under checkpoints/]", show_default=False
        ),
    ] = None,
) -> None:
    """Show what a checkpoint holds: model, sizes, tokenizer, corpus, progress, best loss, command."""
    _setup(False)
    from rich.console import Console

    from charrnn import info as inspect

    Console(highlight=False).print(inspect.table(path))


@app.command()
def novelty(
    sample_file: Annotated[str, typer.Argument(help="The generated text, or - for stdin.")],
    corpus: Annotated[
        list[str], typer.Option(help="The training corpus: files or folders (repeatable).", show_default=False)
    ],
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")] = False,
) -> None:
    """Generation or recitation? Novel n-grams (n = 5, 10, 20, 50) and the longest copy from the corpus.

    Example: charrnn sample --length 5000 | charrnn novelty - --corpus input.txt
    """
    _setup(False)
    import json
    import tempfile

    from charrnn import data
    from charrnn import novelty as memorisation

    if "-" in corpus:
        raise CharRNNError("--corpus must name files or folders; only the sample may come from stdin")
    with tempfile.TemporaryDirectory(prefix="charrnn-novelty-") as spool:
        sample_text = "".join(data.read_text(data.resolve_sources([sample_file], Path(spool))))
        result = memorisation.novelty(sample_text, data.read_text(data.resolve_sources(corpus, Path(spool))))
    with _closed_pipe_ends_quietly():
        sys.stdout.write(
            json.dumps(result.as_dict(), ensure_ascii=False) + "\n" if json_ else memorisation.report(result)
        )


@app.command()
def gradflow(
    checkpoints: Annotated[
        list[str] | None,
        typer.Argument(help="Checkpoint files or run folders to measure.", show_default=False),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(help="Measure each cell freshly initialized and after --budget of training on --corpus."),
    ] = False,
    corpus: Annotated[
        list[str] | None,
        typer.Option(
            help="Text to draw windows from (and, with --compare, to train on). \\[default: each checkpoint's own corpus]",
            show_default=False,
        ),
    ] = None,
    seq_len: Annotated[
        int, typer.Option(help="T: the window; the loss at its last step is traced back to every step.")
    ] = 100,
    budget: Annotated[str, typer.Option(help="--compare: training time per model, e.g. 60s or 2m.")] = "60s",
    cells: Annotated[
        str, typer.Option(help="--compare: the cells to train, comma-separated.")
    ] = "rnn,rnn-relu,lstm,gru",
    forget_bias: Annotated[
        list[float] | None,
        typer.Option(
            help="--compare: LSTM forget-gate bias at initialization; repeat to compare several. \\[default: 0 and 1]",
            show_default=False,
        ),
    ] = None,
    hidden_size: Annotated[int, typer.Option(help="--compare: units per layer.")] = 128,
    layers: Annotated[int, typer.Option(help="--compare: recurrent layers.")] = 1,
    batches: Annotated[int, typer.Option(help="Batches of windows averaged over.")] = 4,
    batch_size: Annotated[int, typer.Option(help="Windows per batch.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed for the windows and for --compare's models.")] = 1337,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write a log-scale plot (PNG). \\[default: none]", show_default=False),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Vanishing and exploding gradients made visible: how far back the loss at one step reaches.

    Prints the norm of d loss(T) / d state(t) by distance T-t and where it falls below 1e-3 of its value at the
    last step. Example: charrnn gradflow --compare --corpus input.txt --seq-len 200 -o gradflow.png
    """
    console = _setup(False)
    if compare == bool(checkpoints):
        raise CharRNNError("give checkpoints to measure, or --compare --corpus FILE (not both)")
    if compare and (not corpus or len(corpus) != 1 or corpus[0] == "-"):
        raise CharRNNError("--compare trains on one text file: pass --corpus FILE")
    if seq_len < 2 or batches < 1 or batch_size < 1:
        raise CharRNNError("--seq-len must be 2 or more, --batches and --batch-size positive")
    from rich.console import Console

    from charrnn import gradflow as lens
    from charrnn.config import CELLS
    from charrnn.runtime import parse_duration, resolve_device

    if compare:
        chosen = [c.strip() for c in cells.split(",") if c.strip()]
        if not chosen or any(c not in CELLS for c in chosen):
            raise CharRNNError(f"--cells takes a comma-separated list of {', '.join(CELLS)}")
        model_cfg = {"hidden_size": hidden_size, "embed_size": 64, "layers": layers, "dropout": 0.0}
        profiles = lens.compare(
            corpus[0],
            chosen,
            forget_bias or [0.0, 1.0],
            parse_duration(budget),
            seq_len,
            model_cfg,
            batches,
            batch_size,
            seed,
            device,
        )
    else:
        dev = resolve_device(device)
        profiles = [lens.profile_checkpoint(p, corpus, seq_len, batches, batch_size, seed, dev) for p in checkpoints]
    Console(width=max(160, console.width)).print(lens.table(profiles, seq_len))
    if output is not None:
        lens.plot(profiles, output)
        console.print(f"wrote {output}")


def _setup(quiet: bool):
    from charrnn.ui import setup_logging

    return setup_logging(debug=_DEBUG, quiet=quiet)


@contextlib.contextmanager
def _closed_pipe_ends_quietly() -> Iterator[None]:
    """The reader went away (`| head`): a normal way for a pipe to end, so exit 0 in silence."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        raise typer.Exit(0) from None


def _argv_without(argv: list[str], option: str) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


_DEBUG = False


def main() -> None:
    """Entry point: one line per error, status 0 when stdout is closed early (`| head`)."""
    # typer may vendor click; take its exception classes from typer itself.
    click_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    global _DEBUG
    argv = sys.argv[1:]
    _DEBUG = "--debug" in argv or bool(os.environ.get("CHARRNN_DEBUG"))
    argv = [a for a in argv if a != "--debug"]
    try:
        code = app(args=argv, prog_name="charrnn", standalone_mode=False)
    except CharRNNError as e:
        if _DEBUG:
            raise
        print(f"charrnn: error: {e}", file=sys.stderr)
        code = 1
    except typer.Exit as e:
        code = e.exit_code
    except typer.Abort:
        code = 130
    except click_error as e:
        if not e.format_message():  # bare `charrnn`: the help was the answer
            sys.exit(0)
        if _DEBUG:
            raise
        hint = (
            f" (see charrnn {e.ctx.info_name} --help)"
            if getattr(e, "ctx", None) and e.ctx.info_name != "charrnn"
            else ""
        )
        print(f"charrnn: error: {e.format_message()}{hint}".replace("\n", " "), file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
