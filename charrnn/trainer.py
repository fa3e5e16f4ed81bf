"""Training: truncated BPTT with carried state, AdamW, warm-up + cosine, clipping.

The pieces: `Setup` (device, precision, processes, seed), `TrainState` (what a checkpoint saves
and restores), `Window` (the sums of one log interval), and `Trainer`, the step loop. The metrics
record and its writers live in charrnn.metrics, the checkpoint record in charrnn.checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import random
import signal
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from charrnn import autosize, checkpoint, distributed, finetune, timelapse
from charrnn.checkpoint import Checkpoint, Cursor, RngState
from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.data import Corpus, load_corpus
from charrnn.errors import CharRNNError
from charrnn.evaluate import evaluate_split, make_batches, split_cold_start
from charrnn.lines import newline_token
from charrnn.metrics import MetricsLogger, MetricsRecord
from charrnn.model import CharRNN, State, compiled, num_parameters, restart_rows
from charrnn.runtime import ThreadGovernor, autocast, resolve_device, resolve_precision
from charrnn.tokenizers import Tokenizer
from charrnn.ui import TrainProgress

log = logging.getLogger("charrnn")

MAX_BAD_STEPS = 5  # consecutive non-finite steps before rolling back to the last good state
MAX_ROLLBACKS = 3


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to lr * min_lr_frac by the end."""
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * warm * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * cosine)


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_val_loss: float
    best_val_bpc: float
    chars_per_sec: float
    signal: int | None = None  # the signal that stopped the run, if one did
    history: list[MetricsRecord] = field(default_factory=list)


def corpus_name(sources: list[str]) -> str:
    """What a run is named for: its one file (its stem) or folder, stdin, or the folder several share."""
    if len(sources) == 1:
        return "stdin" if sources[0] == "-" else Path(sources[0]).stem
    common = Path(os.path.commonpath([os.path.abspath(s) for s in sources if s != "-"] or ["stdin"]))
    return common.name or "corpus"


def run_folder(name: str) -> str:
    """checkpoints/<name>-<timestamp>: a new run's folder."""
    return str(checkpoint.CHECKPOINTS / f"{name}-{datetime.now():%Y%m%d-%H%M%S}")


def new_run_dir(out: str | None, sources: list[str], overwrite: bool) -> Path:
    """The run's folder: `out`, or checkpoints/<corpus>-<timestamp>; never an existing run."""
    run_dir = Path(out if out is not None else run_folder(corpus_name(sources)))
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise CharRNNError(f"{run_dir} already holds a run; resume it, overwrite it, or choose another output folder")
    return run_dir


class StopSignals:
    """First SIGINT/SIGTERM asks the loop to stop after the current step; a second exits at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            os._exit(128 + signum)  # every file on disk is already whole: writes are atomic
        self.signum = signum
        log.warning("%s: stopping after this step and saving last.pt (again to quit now)", signal.Signals(signum).name)

    def __enter__(self) -> StopSignals:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class Setup:
    """Where a run computes: its device, autocast precision and place among the processes."""

    device: torch.device
    autocast_dtype: torch.dtype | None
    dist: distributed.DistInfo

    @property
    def is_main(self) -> bool:
        return self.dist.rank == 0

    @classmethod
    def start(cls, cfg: TrainConfig) -> Setup:
        """Join the processes (if several), pick the device and precision, and seed the generators."""
        device = resolve_device(cfg.device)
        dist = distributed.setup(device)
        device = distributed.device_for(device, dist)
        setup = cls(device, resolve_precision(cfg.precision, device), dist)
        if cfg.batch_size % dist.world:
            raise CharRNNError(
                f"batch_size {cfg.batch_size} must divide evenly among {dist.world} processes", "batch_size"
            )
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        return setup

    def describe(self) -> str:
        dtype = "" if self.autocast_dtype is None else f" ({str(self.autocast_dtype).removeprefix('torch.')} autocast)"
        return f"{self.device}{dtype}" + (f", {self.dist.world} processes" if self.dist.world > 1 else "")


def make_optimizer(model: CharRNN, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # No weight decay on biases and embeddings: the usual AdamW grouping.
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and "embed" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99), fused=device.type == "cuda")


class TrainState:
    """What a checkpoint saves of a run and restores: model, optimizer, scaler, cursor, hidden state, RNG."""

    def __init__(self, model: CharRNN, cfg: TrainConfig, setup: Setup, rows: int) -> None:
        self.model, self.setup, self.rows = model, setup, rows
        self.optimizer = make_optimizer(model, cfg, setup.device)
        self.scaler = torch.amp.GradScaler("cuda") if setup.autocast_dtype == torch.float16 else None
        self.cursor = Cursor()
        self.hidden: State = self.fresh_hidden()
        self.good: tuple[dict, dict] | None = None  # model and optimizer state at the last finite evaluation
        self.parent: dict[str, Any] | None = None  # a fine-tuned run's starting point, kept in every checkpoint

    def fresh_hidden(self) -> State:
        return self.model.init_state(self.rows, self.setup.device)

    def restore(self, ckpt: Checkpoint, batch_size: int) -> None:
        if ckpt.optimizer is not None:
            self.optimizer.load_state_dict(ckpt.optimizer)
        if self.scaler is not None and ckpt.scaler:
            self.scaler.load_state_dict(ckpt.scaler)
        self.cursor = replace(ckpt.cursor)
        start = self.setup.dist.rank * self.rows
        if ckpt.state is not None and ckpt.state[0].shape[1] == batch_size:
            self.hidden = tuple(s[:, start : start + self.rows].to(self.setup.device) for s in ckpt.state)
        else:
            log.warning("batch size changed since the checkpoint: starting with a fresh hidden state")
        if ckpt.rng is not None:
            ckpt.rng.restore()
        self.parent = ckpt.parent

    def to_checkpoint(self, cfg: TrainConfig, data_cfg: DataConfig, corpus: Corpus, command: list[str]) -> Checkpoint:
        """Every rank must call this: the hidden state is gathered from all of them."""
        hidden = distributed.gather_rows(self.hidden, self.setup.dist)
        return Checkpoint(
            model_config=self.model.cfg,
            train_config=cfg,
            data_config=data_cfg,
            tokenizer=corpus.tokenizer.to_state(),
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler is not None else {},
            cursor=replace(self.cursor),
            state=tuple(s.detach().cpu() for s in hidden),
            rng=RngState.capture(),
            corpus_sha256=corpus.sha256,
            train_chars=corpus.train.n_chars,
            command=list(command),
            created=datetime.now().isoformat(timespec="seconds"),
            parent=self.parent,
        )

    def remember_good(self) -> None:
        self.good = copy.deepcopy((self.model.state_dict(), self.optimizer.state_dict()))

    def roll_back(self) -> None:
        """Back to the last finite evaluation at half the learning rate, or give up after MAX_ROLLBACKS."""
        c = self.cursor
        if self.good is None or c.rollbacks >= MAX_ROLLBACKS:
            raise CharRNNError(
                f"training diverged at step {c.step} (loss or gradients not finite); "
                "lower the learning rate or the gradient clip, or train in fp32 precision"
            )
        c.rollbacks += 1
        c.lr_scale *= 0.5
        self.model.load_state_dict(self.good[0])
        self.optimizer.load_state_dict(self.good[1])
        self.hidden = self.fresh_hidden()
        log.warning("rolled back to the last evaluated state; learning rate scaled by %.3g", c.lr_scale)


class Window:
    """Sums over the current log interval, kept on the device so that a step needs no host sync."""

    def __init__(self, device: torch.device, grad_clip: float) -> None:
        self.grad_clip = grad_clip
        self.loss, self.norm, self.clipped = (torch.zeros((), device=device) for _ in range(3))
        self.reset()

    def reset(self) -> None:
        self.loss.zero_(), self.norm.zero_(), self.clipped.zero_()
        self.steps, self.chars, self.start = 0, 0, time.perf_counter()

    def add(self, loss: torch.Tensor, norm: torch.Tensor, chars: int) -> None:
        self.loss += loss
        self.norm += norm
        if self.grad_clip > 0:
            self.clipped += (norm > self.grad_clip).float()
        self.steps += 1
        self.chars += chars

    def fill(self, record: MetricsRecord, lr: float) -> None:
        """The interval's means into `record` (the caller starts the next interval)."""
        record.train_loss = round(float(self.loss) / self.steps, 5)
        record.lr = lr
        record.grad_norm = round(float(self.norm) / self.steps, 5)
        record.clipped = round(float(self.clipped) / self.steps, 4)
        record.chars_per_sec = round(self.chars / max(time.perf_counter() - self.start, 1e-9), 1)


class Trainer:
    """One run's step loop: `run()` trains until a limit or a signal, evaluating, logging and saving."""

    def __init__(
        self,
        setup: Setup,
        cfg: TrainConfig,
        data_cfg: DataConfig,
        corpus: Corpus,
        model: CharRNN,
        run_dir: Path,
        logger: MetricsLogger,
        command: list[str] | None,
        resume: Checkpoint | None = None,
        parent: dict[str, Any] | None = None,
    ) -> None:
        self.setup, self.cfg, self.data_cfg, self.corpus, self.run_dir = setup, cfg, data_cfg, corpus, run_dir
        self.logger = logger
        self.command = command or []
        self.model = model.to(setup.device)
        shard = (setup.dist.rank, setup.dist.world)
        self.batches = make_batches(
            corpus.train, corpus.tokenizer, model, data_cfg.items, cfg.batch_size, cfg.seq_len, shard, cfg.seed
        )
        if len(corpus.val.ids) < 2:
            raise CharRNNError(
                "the validation split is empty; raise val_frac or give a val_file", "val_frac", "val_file"
            )
        rows = self.batches.rows
        self.state = TrainState(self.model, cfg, setup, rows)
        if resume is not None:
            self.state.restore(resume, cfg.batch_size)
        if parent is not None:
            self.state.parent = parent
        self.forward = distributed.wrap(self.model, setup.dist)
        if cfg.compile:
            self.forward = compiled(self.forward)
        self.threads = ThreadGovernor(setup.device, cfg.threads)
        self.last_eval_step = -1
        self.last_sample_step = -1
        self.last_eval: MetricsRecord | None = None  # the record of the last evaluation, for its sample

    @property
    def cursor(self) -> Cursor:
        return self.state.cursor

    def save(self, names: tuple[str, ...]) -> None:
        ckpt = self.state.to_checkpoint(self.cfg, self.data_cfg, self.corpus, self.command)  # every rank gathers
        if self.setup.is_main:
            checkpoint.save_all([self.run_dir / name for name in names], ckpt)

    def progress_fraction(self, elapsed: float) -> float:
        cfg, c = self.cfg, self.cursor
        parts = [0.0]
        if cfg.max_steps:
            parts.append(c.step / cfg.max_steps)
        if cfg.epochs:
            parts.append(c.epochs_done(len(self.batches)) / cfg.epochs)
        if cfg.time_budget:
            parts.append(elapsed / cfg.time_budget)
        return min(1.0, max(parts))

    def _should_stop(self, elapsed: float, signals: StopSignals) -> str | None:
        cfg, c = self.cfg, self.cursor
        reason = None
        if cfg.max_steps and c.step >= cfg.max_steps:
            reason = "max_steps"
        elif cfg.epochs and c.epochs_done(len(self.batches)) >= cfg.epochs:
            reason = "epochs"
        elif cfg.time_budget and elapsed >= cfg.time_budget:
            reason = "time_budget"
        elif signals.signum is not None:
            reason = "signal"
        # Every rank must take the same decision, or one would wait forever in a collective.
        return distributed.agree(reason, self.setup.dist)

    def _batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Window i of the epoch, on the device."""
        x, y = self.batches.get(i)
        if self.setup.device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x.to(self.setup.device, non_blocking=True), y.to(self.setup.device, non_blocking=True)

    def _hidden(self, rows: int, i: int) -> State:
        """The state window i starts from. Truncated BPTT: the carried state's values, its history cut,
        reset in the rows where a document starts; lines: every row from the reset state."""
        if not self.batches.carries_state:
            return self.model.init_state(rows, self.setup.device)
        return restart_rows(tuple(s.detach() for s in self.state.hidden), self.batches.resets(i))

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, hidden: State, lr: float, predicted: int
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """One update; returns the loss, the gradient norm and whether both were finite. `predicted`: the
        real targets of the whole batch, over all processes."""
        st = self.state
        for group in st.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.setup.device, self.setup.autocast_dtype):
            logits, new_hidden = self.forward(x, hidden)
        # The mean over the batch's real targets (padding's IGNORE targets skipped). Each process sums its
        # rows and divides by the whole batch's count times the processes, which DDP's gradient mean
        # divides out again: the same update as one process, however the padding falls among them.
        summed = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
        loss = summed * (self.setup.dist.world / max(1, predicted))
        st.optimizer.zero_grad(set_to_none=True)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        if st.scaler is None:
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm, foreach=True)
            finite = bool(torch.isfinite(loss.detach() + norm))  # one host sync per step
            if finite:
                st.optimizer.step()
        else:
            # fp16: scale the loss so small gradients survive; the scaler skips overflowed steps
            # itself while it calibrates, so only a non-finite loss counts as a fault here.
            st.scaler.scale(loss).backward()
            st.scaler.unscale_(st.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm, foreach=True)
            finite = bool(torch.isfinite(loss.detach()))
            if finite:
                st.scaler.step(st.optimizer)
            st.scaler.update()
        if finite:
            self.model.constrain(self.cfg.seq_len)  # the cell's weight bounds (IndRNN's |u|)
            if self.batches.carries_state:
                st.hidden = new_hidden
        return loss.detach(), norm.detach(), finite

    def _announce(self) -> None:
        m, tok = self.model.cfg, self.corpus.tokenizer
        log.info(
            "%s %dx%d, %s parameters; %s tokenizer, %d tokens; %s train / %s val tokens; on %s",
            m.cell,
            m.layers,
            m.hidden_size,
            f"{num_parameters(self.model):,}",
            tok.kind,
            tok.vocab_size,
            f"{len(self.corpus.train.ids):,}",
            f"{len(self.corpus.val.ids):,}",
            self.setup.describe(),
        )

    def _record(self, start: float) -> MetricsRecord:
        c = self.cursor
        c.elapsed = time.perf_counter() - start
        return MetricsRecord(
            step=c.step, epoch=round(c.epochs_done(len(self.batches)), 4), chars=c.chars, time=round(c.elapsed, 3)
        )

    def run(self) -> TrainResult:
        cfg, c = self.cfg, self.cursor
        if self.setup.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._announce()
        self.model.train()
        start = time.perf_counter() - c.elapsed
        window = Window(self.setup.device, cfg.grad_clip)
        bad_steps = 0
        with StopSignals() as signals, self.logger.progress:
            while not (stopped_by := self._should_stop(time.perf_counter() - start, signals)):
                # The loop alone moves the cursor through the data: here into a new epoch, below past a window.
                if c.start_window(len(self.batches)):
                    self.state.hidden = self.state.fresh_hidden()  # a new pass starts from a fresh state
                self.batches.shuffle(c.epoch)
                began = time.perf_counter()
                x, y = self._batch(c.step_in_epoch)
                hidden = self._hidden(x.shape[0], c.step_in_epoch)
                lr = lr_at(cfg, c.step, self.progress_fraction(began - start)) * c.lr_scale
                loss, norm, finite = self._train_step(x, y, hidden, lr, self.batches.predicted(c.step_in_epoch))
                if changed := self.threads.step_done(time.perf_counter() - began):
                    log.info(changed)
                c.step_in_epoch += 1  # past this window, and past a batch that broke a step too
                if not finite:
                    bad_steps += 1
                    log.warning("step %d: non-finite loss or gradient norm; update skipped", c.step)
                    if bad_steps >= MAX_BAD_STEPS:
                        self.state.roll_back()
                        bad_steps = 0
                    continue
                bad_steps = 0
                c.step += 1
                step_chars = self._step_chars(c.step_in_epoch - 1)
                c.chars += step_chars
                window.add(loss, norm, step_chars)
                self._after_step(window, lr, start)
            self._finish(stopped_by, start)
        self.logger.close()
        distributed.teardown(self.setup.dist)
        return TrainResult(
            run_dir=self.run_dir,
            steps=c.step,
            best_val_loss=c.best_val_loss,
            best_val_bpc=c.best_val_bpc,
            chars_per_sec=c.chars / max(c.elapsed, 1e-9),
            signal=signals.signum,
            history=self.logger.history,
        )

    def _step_chars(self, i: int) -> int:
        """Characters window i trained on: its predicted tokens (padding left out), as characters."""
        return round(self.batches.predicted(i) * self.corpus.train.chars_per_token)

    def _after_step(self, window: Window, lr: float, start: float) -> None:
        """Log at each log interval, evaluate and save at each evaluation (and snapshot), sample when due,
        save at each save interval."""
        cfg, step = self.cfg, self.cursor.step
        do_eval = step % cfg.eval_every == 0 or self._snapshot_due(step)  # a snapshot carries its val loss
        if step % cfg.log_every == 0 or do_eval:
            record = self._record(start)
            window.fill(record, lr)
            if do_eval:
                self._eval_and_save(record)
            self.logger.write(record, self.progress_fraction(record.time), self.cursor.best_val_loss)
            window.reset()  # after the evaluation: its time is not training time
        if timelapse.due(cfg, step, do_eval):
            window.start += self._sample()  # nor is the sample's
        if cfg.save_every and step % cfg.save_every == 0 and not do_eval:
            self.cursor.elapsed = time.perf_counter() - start
            self.save(("last.pt",))

    def _finish(self, stopped_by: str, start: float) -> None:
        """Save last.pt; evaluate first unless a signal wants out quickly or this step was evaluated."""
        self.cursor.elapsed = time.perf_counter() - start
        if stopped_by == "signal" or self.last_eval_step == self.cursor.step:
            self.save(("last.pt",))
        else:
            record = self._record(start)
            self._eval_and_save(record)
            self.logger.write(record, self.progress_fraction(record.time), self.cursor.best_val_loss)
        if stopped_by != "signal" and self.cfg.sample_every != 0 and self.last_sample_step != self.cursor.step:
            self._sample()  # the last stage of the timelapse

    def _snapshot_due(self, step: int) -> bool:
        return bool(self.cfg.keep_every) and step % self.cfg.keep_every == 0

    def _sample(self) -> float:
        """Rank 0 appends a sample from the current weights to samples.jsonl; returns the seconds it took."""
        began = time.perf_counter()
        self.last_sample_step = self.cursor.step
        if self.setup.is_main:
            record = timelapse.draw(self.model, self.corpus.tokenizer, self.cfg, self.cursor.step, self.setup.device)
            record.chars = self.cursor.chars
            if self.last_eval_step == self.cursor.step and self.last_eval is not None:
                record.val_loss, record.val_bpc = self.last_eval.val_loss, self.last_eval.val_bpc
            timelapse.append(self.run_dir, record)
        return time.perf_counter() - began

    def _eval_and_save(self, record: MetricsRecord) -> None:
        """Rank 0 evaluates on the whole validation split; all ranks then save (the state gather)."""
        c, cfg, val = self.cursor, self.cfg, self.corpus.val
        self.last_eval_step, self.last_eval = c.step, record
        val_loss = None
        if self.setup.is_main:
            device, dtype = self.setup.device, self.setup.autocast_dtype
            result = evaluate_split(
                self.model, val, self.corpus.tokenizer, self.data_cfg.items, cfg.batch_size, cfg.seq_len, device, dtype
            )
            val_loss = result.nats_per_token
            record.val_loss, record.val_bpc = round(val_loss, 5), round(result.bits_per_char, 5)
            cold = split_cold_start(self.model, val, self.corpus.tokenizer, device, dtype)
            record.cold_start_loss = None if cold is None else round(cold, 5)
        val_loss = distributed.broadcast_float(val_loss, self.setup.dist)
        names: tuple[str, ...] = ("last.pt",)
        if math.isfinite(val_loss) and val_loss < c.best_val_loss:
            c.best_val_loss = val_loss
            c.best_val_bpc = record.val_bpc if record.val_bpc is not None else math.inf
            names = ("last.pt", "best.pt")
        if math.isfinite(val_loss):
            self.state.remember_good()
        if self._snapshot_due(c.step):
            names += (checkpoint.snapshot_name(c.step),)
        self.save(names)
        if self._snapshot_due(c.step) and self.setup.is_main:
            checkpoint.prune_snapshots(self.run_dir, cfg.keep_last)


def start_convention(tokenizer: Tokenizer) -> str:
    """How a new run reads each document: after a newline from the reset state, where the newline is
    a token of its own (ModelConfig.start)."""
    return "reset" if newline_token(tokenizer) is None else "newline"


def train(
    data_cfg: DataConfig,
    model_cfg: dict[str, Any],
    cfg: TrainConfig,
    out: str | None = None,
    overwrite: bool = False,
    progress: TrainProgress | None = None,
    command: list[str] | None = None,
    train_given: Collection[str] | None = None,
    init_from: str | None = None,
) -> TrainResult:
    """Train a new model. `model_cfg` holds the ModelConfig fields given (not vocab_size); `command`, the
    command line that asked for the run, is recorded in its checkpoints; `train_given` names the
    TrainConfig fields the user set (None: those that differ from the defaults), which --size auto keeps.
    `init_from`: a run or checkpoint to start from (charrnn.finetune); `model_cfg` may then hold dropout only."""
    setup = Setup.start(cfg)
    run_dir = new_run_dir(out, data_cfg.sources, overwrite) if setup.is_main else Path(".")
    if setup.dist.world > 1:
        run_dir = Path(distributed.broadcast_str(str(run_dir)))
    logger = MetricsLogger(run_dir, progress, cfg.tensorboard, setup.is_main)
    parent, choice = None, None
    if init_from is not None:
        model, corpus, data_cfg, start = finetune.start(init_from, data_cfg, model_cfg)
        model.cfg = replace(model.cfg, start=start_convention(corpus.tokenizer))  # the new run reads documents
        parent = start.as_dict()
    else:
        corpus = load_corpus(data_cfg)
        if autosize.applies(cfg, model_cfg):
            choice = _fit_size(setup, corpus, cfg, model_cfg, train_given)
            model_cfg, cfg = {**choice.model, **model_cfg}, replace(cfg, **choice.train)
        vocab, convention = corpus.tokenizer.vocab_size, start_convention(corpus.tokenizer)
        model = CharRNN(ModelConfig(vocab_size=vocab, start=convention, **model_cfg))
    trainer = Trainer(setup, cfg, data_cfg, corpus, model, run_dir, logger, command, parent=parent)
    if choice is not None:
        trainer.cursor.elapsed = choice.probe_secs  # probing counts against the time budget
        if setup.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "autosize.json").write_text(json.dumps(choice.to_dict(), indent=1) + "\n")
    return trainer.run()


def _fit_size(
    setup: Setup, corpus: Corpus, cfg: TrainConfig, model_cfg: dict[str, Any], train_given: Collection[str] | None
) -> autosize.Choice:
    """--size auto on the first process, its choice shared with the others; logged."""
    if train_given is None:  # a library call: what differs from the defaults was given
        train_given = [f for f in autosize.AUTO_TRAIN_FIELDS if getattr(cfg, f) != getattr(TrainConfig(epochs=1), f)]
    choice = None
    if setup.is_main:
        choice = autosize.fit(corpus, cfg, model_cfg, train_given, setup.device, setup.autocast_dtype)
    if setup.dist.world > 1:
        choice = autosize.Choice.from_dict(
            json.loads(distributed.broadcast_str(json.dumps(choice and choice.to_dict())))
        )
    assert choice is not None
    parts, named = [], set()  # a size's first probe is at the run's batch, a second at the small one
    for p in choice.probes:
        parts.append(
            f"(batch {p.batch_size}: {p.chars_per_sec:,.0f})" if p.name in named else f"{p.name} {p.chars_per_sec:,.0f}"
        )
        named.add(p.name)
    speeds = ", ".join(parts)
    settings = ", ".join(f"{k} {v}" for k, v in {**choice.model, **choice.train}.items())
    log.info("size auto: %s (%s) from chars/s %s; measured in %.1f s", choice.name, settings, speeds, choice.probe_secs)
    return choice


def resume(
    path: str,
    overrides: dict[str, Any] | None = None,
    sources: list[str] | None = None,
    allow_corpus_change: bool = False,
    progress: TrainProgress | None = None,
    command: list[str] | None = None,
) -> TrainResult:
    """Continue a run from its last.pt; `overrides` may change limits and other TrainConfig fields."""
    ckpt_path = checkpoint.resolve(path, name="last.pt")
    ckpt = checkpoint.load(ckpt_path)
    if ckpt.cursor is None or ckpt.train_config is None or ckpt.data_config is None:
        raise CharRNNError(f"{ckpt_path} holds no training state to resume from")
    data_cfg = replace(ckpt.data_config, sources=sources) if sources else ckpt.data_config
    cfg = replace(ckpt.train_config, **(overrides or {}))
    setup = Setup.start(cfg)
    logger = MetricsLogger(ckpt_path.parent, progress, cfg.tensorboard, setup.is_main)
    model, tokenizer = checkpoint.build_model(ckpt)
    corpus = load_corpus(data_cfg, tokenizer, None if allow_corpus_change else ckpt.corpus_sha256)
    trainer = Trainer(setup, cfg, data_cfg, corpus, model, ckpt_path.parent, logger, command, resume=ckpt)
    return trainer.run()
