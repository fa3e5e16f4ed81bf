"""The training loop: truncated BPTT with carried state, AdamW, warm-up + cosine, clipping."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import random
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from charrnn import checkpoint, distributed
from charrnn.config import DataConfig, ModelConfig, TrainConfig
from charrnn.data import BPTTBatches, Corpus, load_corpus
from charrnn.errors import CharRNNError
from charrnn.model import CharRNN, State, num_parameters
from charrnn.tensorboard_log import TensorBoardLog
from charrnn.ui import TrainProgress

log = logging.getLogger("charrnn")

LN2 = math.log(2)
MAX_BAD_STEPS = 5  # consecutive non-finite steps before rolling back to the last good state
MAX_ROLLBACKS = 3


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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CharRNNError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise CharRNNError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CharRNNError(f"--device {name} asked for CUDA, but no CUDA GPU is available; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CharRNNError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) present")
    return device


def cpu_supports_bf16() -> bool:
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. Master weights always stay fp32."""
    if device.type == "cuda":
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if precision == "fp16":
        raise CharRNNError("--precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
    if precision == "bf16" and not cpu_supports_bf16():
        raise CharRNNError("this CPU has no bf16 support for recurrent layers (AVX512-BF16); use --precision fp32")
    # auto: bf16 where the CPU has native bf16 units, else fp32 (emulated bf16 is slower).
    return torch.bfloat16 if precision == "bf16" or (precision == "auto" and cpu_supports_bf16()) else None


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to lr * min_lr_frac by the end."""
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * warm * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * cosine)


@dataclass
class Cursor:
    """Where training stands: enough, with the RNG states, to continue exactly."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    chars: int = 0
    elapsed: float = 0.0
    best_val_loss: float = math.inf
    best_val_bpc: float = math.inf
    lr_scale: float = 1.0
    rollbacks: int = 0


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_val_loss: float
    best_val_bpc: float
    last_val_loss: float | None
    chars_per_sec: float
    stopped_by: str  # max_steps | epochs | time_budget | signal
    signal: int | None = None
    history: list[dict] = field(default_factory=list)


def new_run_dir(out: str | None, sources: list[str], overwrite: bool) -> Path:
    """The run's folder: --out, or checkpoints/<corpus>-<timestamp>; never an existing run."""
    if out is None:
        stem = Path(sources[0]).stem if sources and sources[0] != "-" else "stdin"
        out = str(checkpoint.CHECKPOINTS / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}")
    run_dir = Path(out)
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise CharRNNError(
            f"{run_dir} already holds a run; pass --resume {run_dir} to continue it, "
            "--overwrite to replace it, or choose another --out"
        )
    return run_dir


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": list(random.getstate()[1]), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate((3, tuple(state["python"]), None))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


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


@torch.inference_mode()
def evaluate(
    model: CharRNN,
    ids,
    chars_per_token: float,
    batch_size: int,
    seq_len: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[float, float]:
    """Mean loss in nats per token over the whole split, and bits per character of its text."""
    # More streams than in training make evaluation faster; each still sees a long context.
    streams = max(1, min(max(batch_size, 64), (len(ids) - 1) // (seq_len + 1)))
    batches = BPTTBatches(ids, streams, seq_len, allow_partial=True)
    was_training = model.training
    model.eval()
    state = model.init_state(streams, device)
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for i in range(len(batches)):
        x, y = (t.to(device, non_blocking=True) for t in batches.get(i))
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            logits, state = model(x, state)
        total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").double()
        count += y.numel()
    model.train(was_training)
    loss = total.item() / count
    return loss, loss / chars_per_token / LN2


class Trainer:
    """Holds everything one run needs; `run()` trains until a limit or a signal."""

    def __init__(
        self,
        data_cfg: DataConfig,
        model_cfg: dict[str, Any],
        cfg: TrainConfig,
        run_dir: Path,
        resume: dict[str, Any] | None = None,
        allow_corpus_change: bool = False,
        progress: TrainProgress | None = None,
        command: list[str] | None = None,
    ) -> None:
        device = resolve_device(cfg.device)
        self.dist = distributed.setup(device)
        self.is_main = self.dist.rank == 0
        self.cfg, self.data_cfg, self.run_dir = cfg, data_cfg, run_dir
        self.progress = progress if progress is not None and self.is_main else TrainProgress(enabled=False)
        self.command = command or sys.argv
        self.tensorboard = TensorBoardLog(run_dir) if cfg.tensorboard and self.is_main else None
        self.device = distributed.device_for(device, self.dist)
        self.autocast_dtype = resolve_precision(cfg.precision, self.device)
        if cfg.batch_size % self.dist.world:
            raise CharRNNError(f"--batch-size {cfg.batch_size} must divide evenly among {self.dist.world} processes")
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)

        tokenizer = None
        if resume is not None:
            model, tokenizer = checkpoint.build_model(resume)
            self.model_cfg = model.cfg
        expect = resume["corpus_sha256"] if resume is not None and not allow_corpus_change else None
        self.corpus: Corpus = load_corpus(data_cfg, tokenizer, expect)
        if resume is None:
            self.model_cfg = ModelConfig(vocab_size=self.corpus.tokenizer.vocab_size, **model_cfg)
            model = CharRNN(self.model_cfg)
        self.model = model.to(self.device)
        self.batches = BPTTBatches(
            self.corpus.train.ids, cfg.batch_size, cfg.seq_len, shard=(self.dist.rank, self.dist.world)
        )
        if len(self.corpus.val.ids) < 2:
            raise CharRNNError("the validation split is empty; raise --val-frac or give --val-file")
        self.optimizer = self._make_optimizer()
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast_dtype == torch.float16 else None
        self.cursor = Cursor()
        self.state: State = self.model.init_state(self.batches.streams.shape[0], self.device)
        if resume is not None:
            self._restore(resume)
        self.train_model = distributed.wrap(self.model, self.dist)
        self.forward = torch.compile(self.train_model) if cfg.compile else self.train_model
        self.history: list[dict] = []
        self.last_eval_step = -1
        self.good_snapshot: dict[str, Any] | None = None

    def _make_optimizer(self) -> torch.optim.Optimizer:
        # No weight decay on biases and embeddings: the usual AdamW grouping.
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (decay if p.dim() >= 2 and "embed" not in name else no_decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        fused = self.device.type == "cuda"
        return torch.optim.AdamW(groups, lr=self.cfg.lr, betas=(0.9, 0.99), fused=fused)

    # -- checkpoints -------------------------------------------------------------------------

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.cursor = Cursor(**ckpt["cursor"])
        rows = self.batches.streams.shape[0]
        start = self.dist.rank * rows
        saved = ckpt["state"]
        if saved[0].shape[1] == self.cfg.batch_size:
            self.state = tuple(s[:, start : start + rows].to(self.device) for s in saved)
        else:
            log.warning("batch size changed since the checkpoint: starting with a fresh hidden state")
        _set_rng_state(ckpt["rng"])

    def _checkpoint(self) -> dict[str, Any]:
        return {
            "model_config": asdict(self.model_cfg),
            "train_config": asdict(self.cfg),
            "data_config": asdict(self.data_cfg),
            "tokenizer": self.corpus.tokenizer.to_state(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "cursor": asdict(self.cursor),
            "state": tuple(s.detach().cpu() for s in distributed.gather_rows(self.state, self.dist)),
            "rng": _rng_state(),
            "corpus_sha256": self.corpus.sha256,
            "train_chars": self.corpus.train.n_chars,
            "command": list(self.command),
            "created": datetime.now().isoformat(timespec="seconds"),
        }

    def save(self, names: tuple[str, ...]) -> None:
        ckpt = self._checkpoint()  # every rank joins the gather inside
        if self.is_main:
            for name in names:
                checkpoint.save(self.run_dir / name, ckpt)

    # -- the loop ----------------------------------------------------------------------------

    def progress_fraction(self, elapsed: float) -> float:
        cfg, c = self.cfg, self.cursor
        parts = [0.0]
        if cfg.max_steps:
            parts.append(c.step / cfg.max_steps)
        if cfg.epochs:
            parts.append((c.epoch + c.step_in_epoch / len(self.batches)) / cfg.epochs)
        if cfg.time_budget:
            parts.append(elapsed / cfg.time_budget)
        return min(1.0, max(parts))

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches from the cursor on, each copied to the device while the previous one trains."""
        pin = self.device.type == "cuda"
        while True:
            if self.cursor.step_in_epoch >= len(self.batches):
                self.cursor.epoch += 1
                self.cursor.step_in_epoch = 0
                self.state = self.model.init_state(self.batches.streams.shape[0], self.device)  # new pass
            x, y = self.batches.get(self.cursor.step_in_epoch)
            if pin:
                x, y = x.pin_memory(), y.pin_memory()
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def _should_stop(self, elapsed: float, signals: StopSignals) -> str | None:
        cfg, c = self.cfg, self.cursor
        reason = None
        if cfg.max_steps and c.step >= cfg.max_steps:
            reason = "max_steps"
        elif cfg.epochs and c.epoch + c.step_in_epoch / len(self.batches) >= cfg.epochs:
            reason = "epochs"
        elif cfg.time_budget and elapsed >= cfg.time_budget:
            reason = "time_budget"
        elif signals.signum is not None:
            reason = "signal"
        # Every rank must take the same decision, or one would wait forever in a collective.
        return distributed.agree(reason, self.dist)

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor, bool]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # Truncated BPTT: keep the state's values, cut its history.
        state = tuple(s.detach() for s in self.state)
        with torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
        ):
            logits, new_state = self.forward(x, state)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        if self.scaler is None:
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm, foreach=True)
            finite = bool(torch.isfinite(loss.detach() + norm))  # one host sync per step
            if finite:
                self.optimizer.step()
        else:
            # fp16: scale the loss so small gradients survive; the scaler skips overflowed steps
            # itself while it calibrates, so only a non-finite loss counts as a fault here.
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm, foreach=True)
            finite = bool(torch.isfinite(loss.detach()))
            if finite:
                self.scaler.step(self.optimizer)
            self.scaler.update()
        if finite:
            self.model.constrain(self.cfg.seq_len)  # the cell's weight bounds (IndRNN's |u|)
            self.state = new_state
        return loss.detach(), norm.detach(), finite

    def run(self) -> TrainResult:
        cfg, c = self.cfg, self.cursor
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            log.info(
                "%s %dx%d, %s parameters; %s tokenizer, %d tokens; %s train / %s val tokens; on %s%s%s",
                self.model_cfg.cell,
                self.model_cfg.layers,
                self.model_cfg.hidden_size,
                f"{num_parameters(self.model):,}",
                self.corpus.tokenizer.kind,
                self.corpus.tokenizer.vocab_size,
                f"{len(self.corpus.train.ids):,}",
                f"{len(self.corpus.val.ids):,}",
                self.device,
                "" if self.autocast_dtype is None else f" ({str(self.autocast_dtype).removeprefix('torch.')} autocast)",
                f", {self.dist.world} processes" if self.dist.world > 1 else "",
            )
        self.model.train()
        chars_per_token = self.corpus.train.chars_per_token
        tokens_per_step = cfg.batch_size * cfg.seq_len
        start = time.perf_counter() - c.elapsed
        window_start, window_chars = time.perf_counter(), 0
        loss_sum = torch.zeros((), device=self.device)
        norm_sum = torch.zeros((), device=self.device)
        clipped = torch.zeros((), device=self.device)
        window_steps = bad_steps = 0
        last_val = None
        stopped_by = None
        batches = self._batches()
        with StopSignals() as signals, self.progress:
            while True:
                elapsed = time.perf_counter() - start
                stopped_by = self._should_stop(elapsed, signals)
                if stopped_by:
                    break
                x, y = next(batches)
                lr = lr_at(cfg, c.step, self.progress_fraction(elapsed)) * c.lr_scale
                loss, norm, finite = self._train_step(x, y, lr)
                if not finite:
                    c.step_in_epoch += 1  # move past the batch that broke it
                    bad_steps += 1
                    log.warning("step %d: non-finite loss or gradient norm; update skipped", c.step)
                    if bad_steps >= MAX_BAD_STEPS:
                        self._roll_back()
                        bad_steps = 0
                    continue
                bad_steps = 0
                c.step += 1
                c.step_in_epoch += 1
                c.chars += round(tokens_per_step * chars_per_token)
                window_chars += round(tokens_per_step * chars_per_token)
                loss_sum += loss
                norm_sum += norm
                if cfg.grad_clip > 0:
                    clipped += (norm > cfg.grad_clip).float()
                window_steps += 1

                do_eval = c.step % cfg.eval_every == 0
                if c.step % cfg.log_every == 0 or do_eval:
                    now = time.perf_counter()
                    c.elapsed = now - start
                    rate = window_chars / max(now - window_start, 1e-9)
                    record = {
                        "step": c.step,
                        "epoch": round(c.epoch + c.step_in_epoch / len(self.batches), 4),
                        "chars": c.chars,
                        "time": round(c.elapsed, 3),
                        "train_loss": round(float(loss_sum) / window_steps, 5),
                        "lr": lr,
                        "grad_norm": round(float(norm_sum) / window_steps, 5),
                        "clipped": round(float(clipped) / window_steps, 4),
                        "chars_per_sec": round(rate, 1),
                    }
                    if do_eval:
                        last_val = self._eval_and_save(record)
                    self._log(record, do_eval or c.step % cfg.log_every == 0)
                    loss_sum.zero_(), norm_sum.zero_(), clipped.zero_()
                    window_steps, window_chars, window_start = 0, 0, time.perf_counter()
                if cfg.save_every and c.step % cfg.save_every == 0 and not do_eval:
                    c.elapsed = time.perf_counter() - start
                    self.save(("last.pt",))

            c.elapsed = time.perf_counter() - start
            if stopped_by == "signal" or self.last_eval_step == c.step:
                self.save(("last.pt",))  # a signal wants out quickly; an evaluated step is saved already
            else:
                record = {
                    "step": c.step,
                    "epoch": round(c.epoch + c.step_in_epoch / len(self.batches), 4),
                    "chars": c.chars,
                    "time": round(c.elapsed, 3),
                }
                last_val = self._eval_and_save(record)
                self._log(record, True)
        if self.tensorboard is not None:
            self.tensorboard.close()
        distributed.teardown(self.dist)
        return TrainResult(
            run_dir=self.run_dir,
            steps=c.step,
            best_val_loss=c.best_val_loss,
            best_val_bpc=c.best_val_bpc,
            last_val_loss=last_val,
            chars_per_sec=c.chars / max(c.elapsed, 1e-9),
            stopped_by=stopped_by or "max_steps",
            signal=signals.signum,
            history=self.history,
        )

    def _eval_and_save(self, record: dict) -> float | None:
        """Rank 0 evaluates on the whole validation split; all ranks then save (the state gather)."""
        c = self.cursor
        self.last_eval_step = c.step
        val_loss = None
        if self.is_main:
            val_loss, val_bpc = evaluate(
                self.model,
                self.corpus.val.ids,
                self.corpus.val.chars_per_token,
                self.cfg.batch_size,
                self.cfg.seq_len,
                self.device,
                self.autocast_dtype,
            )
            record.update(val_loss=round(val_loss, 5), val_bpc=round(val_bpc, 5))
        val_loss = distributed.broadcast_float(val_loss, self.dist)
        names: tuple[str, ...] = ("last.pt",)
        if math.isfinite(val_loss) and val_loss < c.best_val_loss:
            c.best_val_loss = val_loss
            c.best_val_bpc = record.get("val_bpc", math.inf)
            names = ("last.pt", "best.pt")
        if math.isfinite(val_loss):
            self.good_snapshot = copy.deepcopy(
                {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
            )
        self.save(names)
        return val_loss

    def _roll_back(self) -> None:
        c = self.cursor
        if self.good_snapshot is None or c.rollbacks >= MAX_ROLLBACKS:
            raise CharRNNError(
                f"training diverged at step {c.step} (loss or gradients not finite); "
                "lower --lr or --grad-clip, or try --precision fp32"
            )
        c.rollbacks += 1
        c.lr_scale *= 0.5
        self.model.load_state_dict(self.good_snapshot["model"])
        self.optimizer.load_state_dict(self.good_snapshot["optimizer"])
        self.state = self.model.init_state(self.batches.streams.shape[0], self.device)
        log.warning("rolled back to the last evaluated state; learning rate scaled by %.3g", c.lr_scale)

    def _log(self, record: dict, log_line: bool) -> None:
        if not self.is_main:
            return
        self.history.append(record)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            self.tensorboard.write(record)
        status = (
            f"step {record['step']} | epoch {record['epoch']:.2f} | "
            + (f"{record['chars_per_sec']:,.0f} chars/s | " if "chars_per_sec" in record else "")
            + (f"loss {record['train_loss']:.4f} | " if "train_loss" in record else "")
            + (
                f"val {record['val_loss']:.4f} ({record['val_bpc']:.3f} bpc)"
                if "val_loss" in record
                else (f"val {self.cursor.best_val_loss:.4f} best" if math.isfinite(self.cursor.best_val_loss) else "")
            )
        )
        elapsed = record["time"]
        self.progress.update(self.progress_fraction(elapsed), status, log_line)


def train(
    data_cfg: DataConfig,
    model_cfg: dict[str, Any],
    cfg: TrainConfig,
    out: str | None = None,
    overwrite: bool = False,
    progress: TrainProgress | None = None,
    command: list[str] | None = None,
) -> TrainResult:
    """Train a new model. `model_cfg` holds ModelConfig fields except vocab_size."""
    info = distributed.setup(resolve_device(cfg.device))
    run_dir = new_run_dir(out, data_cfg.sources, overwrite) if info.rank == 0 else Path(".")
    if info.world > 1:
        run_dir = Path(distributed.broadcast_str(str(run_dir)))
    return Trainer(data_cfg, model_cfg, cfg, run_dir, progress=progress, command=command).run()


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
    if "cursor" not in ckpt:
        raise CharRNNError(f"{ckpt_path} holds no training state to resume from")
    data_cfg = DataConfig(**{**ckpt["data_config"], **({"sources": sources} if sources else {})})
    cfg = TrainConfig(**{**ckpt["train_config"], **(overrides or {})})
    trainer = Trainer(
        data_cfg,
        {},
        cfg,
        ckpt_path.parent,
        resume=ckpt,
        allow_corpus_change=allow_corpus_change,
        progress=progress,
        command=command,
    )
    return trainer.run()
