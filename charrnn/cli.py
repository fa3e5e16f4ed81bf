"""The command line: parse options, call the library, print what it returns.

The options are derived from the config dataclasses (charrnn.options); CharRNNError becomes one line on
stderr, its settings named by their flags. torch is imported only inside commands, so `--help` answers at once.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from charrnn import options
from charrnn.config import (
    DataConfig,
    EvalConfig,
    GradflowConfig,
    ModelConfig,
    NoveltyConfig,
    SampleConfig,
    SampleOutput,
    ScoreConfig,
    ServeConfig,
    Shared,
    TimelapseConfig,
    TrainConfig,
    parse_duration,
)
from charrnn.errors import CharRNNError
from charrnn.options import Options, command

app = typer.Typer(
    name="charrnn",
    help="Train recurrent language models (LSTM, GRU, RNN) on any text, and generate text from them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@command(app, *options.TRAIN)
def train(o: Options) -> None:
    """Train a model on a corpus; checkpoints go to checkpoints/<run>/ (best.pt, last.pt).

    A sample at each evaluation goes to samples.jsonl (shown by charrnn timelapse); --keep-every N keeps step-N.pt.

    Example: charrnn train data/input.txt --time-budget 10m
    """
    console = _setup(o["quiet"])
    if o["nproc"] > 1:
        from charrnn import distributed

        raise typer.Exit(distributed.launch(o["nproc"], _argv_without(sys.argv[1:], "--nproc")))
    from charrnn import trainer as training
    from charrnn.ui import TrainProgress

    cfg, model_cfg, data_cfg = o.given(TrainConfig), o.given(ModelConfig), o.given(DataConfig)
    progress = TrainProgress(console, enabled=not o["quiet"])
    if o["resume"] and o["init_from"]:
        raise CharRNNError("--resume continues a run, --init-from starts a new one from it; give one of them")
    if o["resume"]:
        if model_cfg or data_cfg.keys() - {"sources"}:
            raise CharRNNError("--resume continues the saved model and data settings; drop the model and data options")
        result = training.resume(o["resume"], cfg, o["sources"], o["allow_corpus_change"], progress, sys.argv)
    else:
        if not o["sources"]:
            raise CharRNNError("no corpus given; name a text file, a folder, or - for stdin (or --resume RUN)")
        if o["init_from"]:
            from charrnn.finetune import refuse_fixed

            refuse_fixed(model_cfg, data_cfg)
        data = DataConfig(**data_cfg)
        result = training.train(
            data,
            model_cfg,
            TrainConfig(**cfg),
            o["out"],
            o["overwrite"],
            progress,
            sys.argv,
            train_given=cfg.keys(),
            init_from=o["init_from"],
        )
    if result.signal is not None:
        console.print(f"stopped by signal; saved {result.run_dir / 'last.pt'} at step {result.steps}")
        raise typer.Exit(128 + result.signal)
    if not o["quiet"]:
        console.print(
            f"done: {result.steps} steps, best val loss {result.best_val_loss:.4f} nats "
            f"({result.best_val_bpc:.3f} bits/char), {result.chars_per_sec:,.0f} chars/s; "
            f"saved to {result.run_dir}/"
        )


@command(app, *options.SAMPLE)
def sample(o: Options) -> None:
    """Generate text from a trained model, streamed to stdout (only the text goes there).

    Examples: charrnn sample --temp 0.8 --length 2000 | head -c 200;
    echo "ROMEO:" | charrnn sample --top-p 0.9
    """
    _setup(False)
    out, shared = o.make(SampleOutput), o.make(Shared)
    if o["prime"] is None and not sys.stdin.isatty():
        from charrnn.data import read_stdin_text

        o["prime"] = read_stdin_text(shared.encoding)
    cfg = o.make(SampleConfig, prime=o["prime"] or "", stop=o["stop"] or [])
    from charrnn import sample as sampling
    from charrnn.lines import sample_settings
    from charrnn.ui import SampleWriter

    model, tok, device = _load(o)
    lines = o["run_items"] == "lines"
    separator, end = out.separator_text(), ""
    if lines:  # one item per sample, printed one per line
        cfg, separator, end = sample_settings(cfg, out)
    with _closed_pipe_ends_quietly():
        writer = SampleWriter(sys.stdout, out.format, separator, cfg)
        writer.finish(sampling.generate(model, tok, cfg, device, emit=writer.emit, lines=lines))
        if out.format == "text":
            sys.stdout.write(end)


@command(app, *options.COMMANDS["demo"])
def demo(o: Options) -> None:
    """Train a small model on the Python standard library's own source code, then sample it.

    Needs no download: every Python installation carries this corpus.
    """
    console = _setup(False)
    from charrnn import checkpoint as ckpts
    from charrnn import data
    from charrnn import sample as sampling
    from charrnn import trainer as training
    from charrnn.ui import SampleWriter, TrainProgress

    files = data.stdlib_sources()
    console.print(f"corpus: {len(files)} modules of the Python standard library in {Path(files[0]).parent}")
    result = training.train(
        DataConfig(sources=files, val_frac=0.05),
        {"hidden_size": 256, "embed_size": 64, "layers": 2, "dropout": 0.0},
        # One evaluation at the end: in a minute every second of training counts. Short windows and a high
        # learning rate make many updates of the few characters a minute allows: at 60 s, 1.45-1.50 nats
        # against 1.94 with 128-token windows at lr 5e-3 on AVX2 kernels, 1.51 against 1.59 in bf16.
        TrainConfig(
            time_budget=parse_duration(o["time_budget"]),
            seq_len=32,
            lr=1e-2,
            eval_every=10**9,
            warmup_steps=30,
            sample_every=0,
        ),
        out=training.run_folder("stdlib"),
        progress=TrainProgress(console),
        command=sys.argv,
    )
    last = result.history[-1] if result.history else None
    cold = f", cold start {last.cold_start_loss:.3f}" if last and last.cold_start_loss is not None else ""
    console.print(
        f"best val loss {result.best_val_loss:.3f} nats ({result.best_val_bpc:.3f} bits/char){cold}; "
        "sampling a module from its first character:"
    )
    model, tok = ckpts.build_model(ckpts.load(result.run_dir / "best.pt"))
    cfg = SampleConfig(length=o["length"], temperature=0.6)
    with _closed_pipe_ends_quietly():
        writer = SampleWriter(sys.stdout, "text", "\n\n", cfg)
        writer.finish(sampling.generate(model, tok, cfg, emit=writer.emit))
        print(file=sys.stdout)


@command(app, *options.COMMANDS["plot"])
def plot(o: Options) -> None:
    """Plot training curves: loss against characters seen and wall time, gradient norm, learning rate.

    Example: charrnn plot checkpoints/run-a checkpoints/run-b -o runs.png
    """
    _setup(False)
    from charrnn import plot as plotting

    text = plotting.render(o["runs"], o["output"], plotting.parse_size(o["size"]), o["terminal"])
    if text is not None:
        with _closed_pipe_ends_quietly():
            sys.stdout.write(text)


@command(app, *options.EVAL, name="eval")
def eval_(o: Options) -> None:
    """Loss (nats/token), bits per character and perplexity of any text under a model.

    Each file is read in blocks and fed as one sequence, the hidden state running through it; a model trained
    on documents reads each file from the reset state after a newline. The cold start is the loss over the first
    64 characters after document starts (one file: line starts spread through it).
    Example: charrnn eval held_out.txt -c checkpoints/my-run
    """
    _setup(False)
    cfg, shared = o.make(EvalConfig), o.make(Shared)
    import json
    import tempfile

    from charrnn import data
    from charrnn.evaluate import evaluate_documents, text_cold_start
    from charrnn.lines import newline_id

    model, tok, device = _load(o)
    lines = o["run_items"] == "lines"
    newline = newline_id(tok) if lines else None  # score each line from a reset state
    with tempfile.TemporaryDirectory(prefix="charrnn-eval-") as spool:
        files = data.resolve_sources(cfg.files, Path(spool))
        result = evaluate_documents(
            model, tok, data.read_documents(files, encoding=shared.encoding), device, cfg.unknown, newline
        )
        n_chars = result.chars + result.skipped
        cold = None if lines else text_cold_start(model, tok, data.openings(files, shared.encoding, n_chars), device)
    if o["json"]:
        print(json.dumps(result.as_dict() | {"cold_start_loss": cold}))
    else:
        print(
            f"{result.tokens:,} tokens, {result.chars:,} characters\n"
            f"loss        {result.nats_per_token:.4f} nats/token\n"
            f"bits/char   {result.bits_per_char:.4f}\n"
            f"perplexity  {result.perplexity:.3f} (per token)"
            + (
                ""
                if cold is None
                else f"\ncold start  {cold:.4f} nats/token (the first 64 characters after a document or line start)"
            )
        )


@command(app, *options.COMMANDS["info"])
def info(o: Options) -> None:
    """Show what a checkpoint holds: model, sizes, tokenizer, corpus, progress, best loss, command."""
    _setup(False)
    from rich.console import Console

    from charrnn import info as inspect

    Console(highlight=False).print(inspect.table(o["path"]))


@command(app, *options.COMMANDS["novelty"])
def novelty(o: Options) -> None:
    """Generation or recitation? Novel n-grams (n = 5, 10, 20, 50) and the longest copy from the corpus.

    Example: charrnn sample --length 5000 | charrnn novelty - --corpus input.txt
    """
    _setup(False)
    cfg, codec = o.make(NoveltyConfig), o.make(Shared).encoding
    import json
    import tempfile

    from charrnn import data
    from charrnn import novelty as memorisation

    with tempfile.TemporaryDirectory(prefix="charrnn-novelty-") as spool:
        sample_text = "".join(data.read_text(data.resolve_sources([cfg.sample_file], Path(spool)), encoding=codec))
        corpus = data.read_text(data.resolve_sources(cfg.corpus, Path(spool)), encoding=codec)
        result = memorisation.novelty(sample_text, corpus, items=cfg.items == "lines")
    with _closed_pipe_ends_quietly():
        sys.stdout.write(
            json.dumps(result.as_dict(), ensure_ascii=False) + "\n" if o["json"] else memorisation.report(result)
        )


@command(app, *options.COMMANDS["gradflow"])
def gradflow(o: Options) -> None:
    """Vanishing and exploding gradients made visible: how far back the loss at one step reaches.

    Prints the norm of d loss(T) / d state(t) by distance T-t and where it falls below 1e-3 of its value at the
    last step. Example: charrnn gradflow --compare --corpus input.txt --seq-len 200 -o gradflow.png
    """
    console = _setup(False)
    cfg = o.make(GradflowConfig)
    from rich.console import Console

    from charrnn import gradflow as lens
    from charrnn.runtime import resolve_device

    if cfg.compare:
        model_cfg = {"hidden_size": cfg.hidden_size, "embed_size": 64, "layers": cfg.layers, "dropout": 0.0}
        profiles = lens.compare(
            cfg.corpus[0],
            cfg.chosen_cells(),
            cfg.forget_bias or [0.0, 1.0],
            parse_duration(cfg.budget),
            cfg.seq_len,
            model_cfg,
            cfg.batches,
            cfg.batch_size,
            cfg.seed,
            o["device"],
        )
    else:
        dev = resolve_device(o["device"])
        args = (cfg.corpus, cfg.seq_len, cfg.batches, cfg.batch_size, cfg.seed, dev)
        profiles = [lens.profile_checkpoint(p, *args) for p in cfg.checkpoints]
    Console(width=max(160, console.width)).print(lens.table(profiles, cfg.seq_len))
    if cfg.output is not None:
        lens.plot(profiles, cfg.output)
        console.print(f"wrote {cfg.output}")


@command(app, *options.COMMANDS["export"])
def export(o: Options) -> None:
    """Write a run's single-step model as ONNX (token and state in, logits and state out) and its
    tokenizer beside it as JSON, for generation with onnxruntime and no charrnn or torch.

    Example: charrnn export checkpoints/my-run -o model.onnx (writes model.onnx and model.tokenizer.json)
    """
    console = _setup(False)
    from charrnn import export as exporting

    done = exporting.export(o["run"], o["output"])
    console.print(f"wrote {done.onnx} and {done.tokenizer} from {done.checkpoint}")


@command(app, *options.COMMANDS["timelapse"])
def timelapse(o: Options) -> None:
    """How the model learned to write: the samples taken while it trained, stage by stage.

    Each stage: the step, characters seen and validation loss, then a sample from the same prime.

    From noise to letters, words, names and lines. Training samples at each evaluation (--sample-every N).

    Example: charrnn timelapse checkpoints/my-run | less
    """
    _setup(False)
    cfg = o.make(TimelapseConfig)
    from charrnn import timelapse as stages

    found = stages.read_samples(cfg.run)
    with _closed_pipe_ends_quietly():
        sys.stdout.write(stages.render_jsonl(found) if cfg.json else stages.render(found))


@command(app, *options.COMMANDS["serve"])
def serve(o: Options) -> None:
    """Serve models over HTTP: generation streamed to many users at once, scores, activations.

    Each model is loaded once and named by its run folder (GET /v1/models lists them); Ctrl-C stops.
    Example: charrnn serve checkpoints/my-run --port 8000, then
    curl -N localhost:8000/v1/generate -d '{"prime": "ROMEO:", "temp": 0.8, "length": 200}'
    """
    _setup(False)
    cfg = o.make(ServeConfig)
    from charrnn import serve as serving
    from charrnn import web

    serving.run(cfg, o["device"], web.routes())


def _load(o: Options):
    """The model of --checkpoint, on --device, with its tokenizer and the device."""
    from charrnn import checkpoint as ckpts
    from charrnn.runtime import resolve_device

    device = resolve_device(o["device"])
    ckpt = ckpts.load(ckpts.resolve(o["checkpoint"], step=o["step"]))
    model, tok = ckpts.build_model(ckpt)
    o["run_items"] = ckpt.data_config.items if ckpt.data_config is not None else "text"  # how it was trained
    return model.to(device), tok, device


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
        print(f"charrnn: error: {options.render(str(e), e.fields)}", file=sys.stderr)
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
    # Python's shutdown runs a full garbage collection; with torch loaded it walks a few hundred thousand
    # long-lived objects for 0.1-0.3 s to free memory the process gives back anyway. Frozen, they are skipped.
    gc.freeze()
    sys.exit(code if isinstance(code, int) else 0)


@command(app, *options.COMMANDS["score"])
def score(o: Options) -> None:
    """How likely the model finds a text: JSONL, one object per token (with its top-k guesses) or per line.

    Per token: {"start", "text", "logprob" (nats), "top": a list of text, probability pairs}. --per-line:
    {"line", "characters", "nats", "bits_per_char"}; rank lines with
    charrnn score names.txt --per-line | jq -s -c 'sort_by(.bits_per_char)[]'
    """
    _setup(False)
    cfg = o.make(ScoreConfig)
    import json

    from charrnn import score as scoring

    model, tok, device = _load(o)
    with _closed_pipe_ends_quietly():
        if cfg.per_line:
            lines = scoring.read_lines(cfg.file, o["encoding"])
            for s in scoring.score_lines(model, tok, lines, device=device, precision=cfg.precision):
                sys.stdout.write(json.dumps(s.to_dict()) + "\n")
            return
        result = scoring.score_text(
            model,
            tok,
            scoring.read_text(cfg.file, o["encoding"]),
            top_k=0 if cfg.summary else cfg.top_k,
            device=device,
            precision=cfg.precision,
        )
        rows = [result.summary()] if cfg.summary else result.to_dict()["tokens"]
        sys.stdout.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
