"""The Python API: what the CLI does, for notebooks and scripts.

    import charrnn

    run = charrnn.train("input.txt", time_budget="2m", hidden_size=256)
    model = charrnn.load(run.run_dir)
    print(model.generate(prime="ROMEO:", temperature=0.8, length=200, seed=1))
    for piece in model.stream(prime="ROMEO:", length=200):
        print(piece, end="", flush=True)

Settings are the fields of the config dataclasses (charrnn.config) by name: the CLI's options with
`_` for `-` (the cell is `cell`, the CLI's `--model`). Durations may be given as text ("90s", "10m").
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charrnn.config import PARSERS, DataConfig, ModelConfig, SampleConfig, TrainConfig
from charrnn.errors import CharRNNError

if TYPE_CHECKING:
    from charrnn.sample import Sample
    from charrnn.trainer import TrainResult


def _split(settings: dict[str, Any], *classes: type) -> list[dict[str, Any]]:
    """Hand each setting to the first config class that declares it; an unknown name is an error."""
    """Text for a field that declares a parser (a duration such as "10m") is parsed by it."""
    buckets: list[dict[str, Any]] = [{} for _ in classes]
    fields = [{f.name: f for f in dataclasses.fields(c)} for c in classes]
    for name, value in settings.items():
        owner = next((i for i, named in enumerate(fields) if name in named), None)
        if owner is None:
            known = sorted(set().union(*fields))
            raise CharRNNError(f"unknown setting {name!r}; the settings are: {', '.join(known)}")
        parse = PARSERS.get(fields[owner][name].metadata.get("parse", ""))
        buckets[owner][name] = parse(value) if parse and isinstance(value, str) else value
    return buckets


def train(
    corpus: str | Path | list[str | Path],
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    init_from: str | Path | None = None,
    **settings: Any,
) -> TrainResult:
    """Train a new model on text files or folders; returns the run (its folder, steps, best loss).
    init_from: fine-tune, starting from this run's (or checkpoint's) weights, model and tokenizer.

    Example: charrnn.train("input.txt", max_steps=2000, hidden_size=256, cell="gru")."""
    from charrnn import finetune, trainer
    from charrnn.ui import TrainProgress

    sources = [str(p) for p in corpus] if isinstance(corpus, list | tuple) else [str(corpus)]
    data, model, cfg = _split(settings, DataConfig, ModelConfig, TrainConfig)
    if "vocab_size" in model:
        raise CharRNNError("vocab_size of the model comes from the tokenizer")
    if init_from is not None:
        finetune.refuse_fixed(model, data)
    return trainer.train(
        DataConfig(sources=sources, **data),
        model,
        TrainConfig(**cfg),
        out=None if out is None else str(out),
        overwrite=overwrite,
        progress=TrainProgress(enabled=False),
        train_given=cfg.keys(),
        init_from=None if init_from is None else str(init_from),
    )


class Model:
    """A trained model loaded once from a checkpoint, ready to generate many times."""

    def __init__(self, path: str | Path | None = None, device: str = "auto", step: int | None = None) -> None:
        from charrnn import checkpoint, runtime

        self.path = checkpoint.resolve(path, step=step)
        self.device = runtime.resolve_device(device)
        ckpt = checkpoint.load(self.path)
        network, self.tokenizer = checkpoint.build_model(ckpt)
        self.network = network.to(self.device)
        # Trained with items lines: every sample is one item, from the reset state to its newline.
        self.lines = ckpt.data_config is not None and ckpt.data_config.items == "lines"

    @property
    def info(self) -> dict[str, str]:
        """What `charrnn info` shows, as a dict."""
        from charrnn import info

        return dict(info.describe(self.path)[1])

    def samples(self, **settings: Any) -> list[Sample]:
        """Every sample (or beam search's n best) with its log-probability and settings."""
        return self._generate(settings, emit=None)

    def generate(self, **settings: Any) -> str:
        """The generated text (the first sample, or beam search's best), without the prime."""
        return self.samples(**settings)[0].text

    def stream(self, **settings: Any) -> Iterator[str]:
        """The first sample's text piece by piece, as it is generated."""
        pieces: queue.Queue[str | BaseException | None] = queue.Queue()

        def run() -> None:
            try:
                self._generate(settings, emit=lambda i, text: pieces.put(text) if i == 0 else None)
                pieces.put(None)
            except BaseException as e:  # handed to the reader, who raises it
                pieces.put(e)

        threading.Thread(target=run, daemon=True).start()
        while (piece := pieces.get()) is not None:
            if isinstance(piece, BaseException):
                raise piece
            yield piece

    def _generate(self, settings: dict[str, Any], emit) -> list[Sample]:
        from charrnn import sample

        (fields,) = _split(settings, SampleConfig)
        cfg = SampleConfig(**fields)
        if self.lines:
            from charrnn.lines import item_config

            cfg = item_config(cfg)
        return sample.generate(self.network, self.tokenizer, cfg, self.device, emit=emit, lines=self.lines)


def load(path: str | Path | None = None, device: str = "auto", step: int | None = None) -> Model:
    """A checkpoint file or run folder (default: the latest run under checkpoints/); `step`: the run's
    snapshot of that step (train with keep_every)."""
    return Model(path, device, step)
