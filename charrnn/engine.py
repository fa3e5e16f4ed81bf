"""Continuous batching for the server: one thread steps every active sampling request together.

An RNN's state has a fixed size, so a request is a few rows of one batch: it joins between two steps (the
short primes of the requests that arrived meanwhile stepped together, their states stacked onto the
batch's) and leaves at any step (its rows dropped). Each
request keeps its own SampleConfig, generators, seen-token mask and UTF-8 state, and chooses its tokens with
charrnn.sample's one per-step function, so its text is what `charrnn sample` gives alone (up to the step
kernel's rounding at other batch sizes; see README). Beam search runs on a thread of its own per request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from charrnn.config import SampleConfig
from charrnn.model import CharRNN
from charrnn.sample import (
    STEPPED_PRIME,
    Draws,
    TextSink,
    Utf8Guard,
    _start,
    choose_step,
    feed_primes,
    generate,
    primed,
    step_precision,
)
from charrnn.tokenizers import Tokenizer

log = logging.getLogger("charrnn")

Emit = Callable[[dict], None]  # hands one event to the request's stream (thread-safe)


class Cancelled(Exception):
    """The client went away: a beam search stops at its next streamed piece."""


@dataclass
class Job:
    """One generation request: its settings, randomness, the prime fed, and where its events go."""

    model: CharRNN
    tokenizer: Tokenizer
    cfg: SampleConfig
    seed: int
    generators: list[torch.Generator]
    prime: torch.Tensor
    emit: Emit
    on_end: Callable[[], None]  # frees the request's slot, once
    cancelled: threading.Event = field(default_factory=threading.Event)
    sinks: list[TextSink] = field(default_factory=list)

    def finish_event(self, reason: str | None = None) -> dict:
        samples = [
            {"index": i, "text": s.text, "logprob": s.logprob, "seed": self.seed + i} for i, s in enumerate(self.sinks)
        ]
        if reason is None:
            reason = "length" if all(len(s.text) >= self.cfg.length for s in self.sinks) else "stop"
        return {"done": True, "finish_reason": reason, "prime": self.cfg.prime, "seed": self.seed, "samples": samples}


@dataclass
class _Group:
    """Rows that one call chooses for: their settings, their rows (None: every row of the batch) and,
    for a job with a repetition penalty (which chooses alone), its seen-token mask."""

    cfg: SampleConfig
    rows: torch.Tensor | None
    seen: torch.Tensor


class _Batch:
    """The active rows of one model: next-token logits, stepper states, each row's UTF-8 state and
    uniforms, and which job owns which rows."""

    def __init__(self, model: CharRNN, tokenizer: Tokenizer, device: torch.device) -> None:
        self.model, self.device = model, device
        self.guard = Utf8Guard.for_pieces(tokenizer.pieces, device)
        self.jobs: list[tuple[Job, torch.Tensor | None]] = []  # (job, its seen-token mask if it has a penalty)
        self.logits: torch.Tensor | None = None
        self.states: list[torch.Tensor] = []
        self.utf8 = torch.zeros(0, dtype=torch.long, device=device)
        self.uniforms = Draws([], device)
        self.groups: list[_Group] = []
        self.step = None

    def join(self, jobs: list[Job]) -> None:
        """Add the jobs' rows. Short primes of one length are stepped together, so a wave of requests
        that arrive at once costs one step per prime token, not one per request, before anyone's
        first character; a long prime goes through the sequence kernel alone, as in `charrnn sample`."""
        # One stepper per model (its weights and first-layer table read once): all jobs share the server's precision.
        self.step = self.step or self.model.stepper(step_precision(jobs[0].cfg, self.model, self.device))
        by_length: dict[int, list[Job]] = {}
        for job in jobs:
            by_length.setdefault(len(job.prime) if len(job.prime) <= STEPPED_PRIME else -id(job), []).append(job)
        logits, states, joined = [], [], []
        for group in by_length.values():
            if len(group[0].prime) <= STEPPED_PRIME:
                primes = torch.stack([j.prime for j in group]).to(self.device)
                first, rows = feed_primes(self.model, self.step, primes)
            else:
                first, _, rows, _ = _start(self.model, group[0].cfg, group[0].prime, 1, self.device, self.step)
            for i, job in enumerate(group):
                n = job.cfg.num_samples
                logits.append(first[i : i + 1].expand(n, -1))
                states.append([s[i : i + 1].expand(n, -1) for s in rows])
                joined.append(job)
        if self.logits is not None:
            logits, states = [self.logits, *logits], [self.states, *states]
        # Everything new is made before the batch changes: it takes the jobs whole or, on an error, not at all.
        added = sum(job.cfg.num_samples for job in joined)
        utf8 = torch.cat([self.utf8, torch.zeros(added, dtype=torch.long, device=self.device)])
        uniforms = self.uniforms.plus([g for job in joined for g in job.generators])
        jobs = self.jobs + [(job, self._seen(job)) for job in joined]
        logits, states = torch.cat(logits), [torch.cat(parts) for parts in zip(*states, strict=True)]
        groups = self._groups(jobs)
        self.logits, self.states, self.utf8 = logits, states, utf8
        self.uniforms, self.jobs, self.groups = uniforms, jobs, groups

    def _seen(self, job: Job) -> torch.Tensor | None:
        """The seen-token mask of a job with a repetition penalty (the prime counts as seen)."""
        if job.cfg.repetition_penalty == 1.0:
            return None
        seen = torch.zeros(job.cfg.num_samples, job.tokenizer.vocab_size, dtype=torch.bool, device=self.device)
        seen[:, primed(job.prime, job.cfg, job.model.newline_first).to(self.device)] = True
        return seen

    def advance(self) -> None:
        """One step of every row; each job's sinks take their tokens."""
        uniforms = self.uniforms.next()
        if len(self.groups) == 1 and self.groups[0].rows is None:  # the usual case: one call for all rows
            g = self.groups[0]
            ids, self.utf8 = choose_step(self.logits, g.seen, uniforms, g.cfg, self.guard, self.utf8)
        else:
            ids = torch.empty(self.logits.shape[0], dtype=torch.long, device=self.device)
            for g in self.groups:
                chosen, utf8 = choose_step(
                    self.logits[g.rows], g.seen, uniforms[g.rows], g.cfg, self.guard, self.utf8[g.rows]
                )
                ids[g.rows], self.utf8[g.rows] = chosen, utf8
        logprobs = self.logits.float().log_softmax(-1).gather(1, ids[:, None]).squeeze(1)
        self.logits, self.states = self.step(ids, self.states)
        ids_, lps = ids.tolist(), logprobs.tolist()
        at = 0
        for job, _ in self.jobs:
            for sink in job.sinks:
                sink.feed([ids_[at]], [lps[at]])
                at += 1

    def _groups(self, jobs: list[tuple[Job, torch.Tensor | None]]) -> list[_Group]:
        """The calls that choose every row's token: one per set of strategies, and one per job with a
        repetition penalty (its seen-token mask is updated in place, so such a job chooses alone).
        Rows are independent in every strategy, so a row's choice does not depend on its company."""
        members: dict[object, list[int]] = {}
        settings: dict[object, tuple[SampleConfig, torch.Tensor]] = {}
        for start, (job, seen) in zip(_starts(jobs), jobs, strict=True):
            c = job.cfg
            greedy = c.temperature == 0 or c.top_k == 1
            key = id(job) if seen is not None else ("greedy",) if greedy else (c.temperature, c.top_k, c.top_p, c.min_p)
            members.setdefault(key, []).extend(range(start, start + c.num_samples))
            settings.setdefault(key, (c, seen if seen is not None else _NOTHING_SEEN))
        if len(members) == 1:
            ((cfg, seen),) = settings.values()
            return [_Group(cfg, None, seen)]
        rows = {key: torch.tensor(r, device=self.device) for key, r in members.items()}
        return [_Group(cfg, rows[key], seen) for key, (cfg, seen) in settings.items()]

    def drop(self, keep: list[bool]) -> None:
        """Remove the jobs not kept, and their rows."""
        index = [
            r
            for (job, _), k, start in zip(self.jobs, keep, _starts(self.jobs), strict=True)
            if k
            for r in range(start, start + job.cfg.num_samples)
        ]
        self.jobs = [j for j, k in zip(self.jobs, keep, strict=True) if k]
        self.uniforms = self.uniforms.only(index)
        if not index:
            self.logits, self.states, self.utf8, self.groups = None, [], self.utf8[:0], []
            return
        rows = torch.tensor(index, device=self.device)
        self.logits = self.logits.index_select(0, rows)
        self.states = [s.index_select(0, rows) for s in self.states]
        self.utf8 = self.utf8.index_select(0, rows)
        self.groups = self._groups(self.jobs)


def _starts(jobs: list[tuple[Job, torch.Tensor | None]]) -> list[int]:
    """Each job's first row."""
    starts, at = [], 0
    for job, _ in jobs:
        starts.append(at)
        at += job.cfg.num_samples
    return starts


# What a group without a repetition penalty passes as its seen-token mask: the strategies never read it.
_NOTHING_SEEN = torch.zeros(0, dtype=torch.bool)


class Engine:
    """The step loop: a daemon thread that takes new jobs between steps and steps every batch once per turn."""

    def __init__(self) -> None:
        self._pending: list[Job] = []
        self._batches: dict[int, _Batch] = {}
        self._wake = threading.Condition()
        self._stopping = False
        self.max_rows = 0  # the largest batch stepped so far (tests check requests really shared one)
        self._thread = threading.Thread(target=self._run, name="charrnn-engine", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Generate for the job: beam search on its own thread, sampling in the shared batch."""
        if job.cfg.beam is not None:
            threading.Thread(target=_beam, args=(job,), name="charrnn-beam", daemon=True).start()
            return
        with self._wake:
            self._pending.append(job)
            self._wake.notify()

    @property
    def active(self) -> int:
        """Sampling jobs waiting or in a batch."""
        with self._wake:
            return len(self._pending) + sum(len(b.jobs) for b in self._batches.values())

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self._wake:
                    while not self._pending and not self._busy() and not self._stopping:
                        self._wake.wait()
                    if self._stopping:
                        break
                    joining, self._pending = self._pending, []
                if joining:
                    self._join(joining)
                for batch in self._batches.values():
                    if batch.jobs:
                        self._turn(batch)
        for batch in self._batches.values():
            for job, _ in batch.jobs:
                _end(job, job.finish_event("shutdown"))

    def _busy(self) -> bool:
        return any(batch.jobs for batch in self._batches.values())

    def _join(self, jobs: list[Job]) -> None:
        """Put the new jobs into their models' batches (a model's batch stays, with its stepper, once made)."""
        by_model: dict[int, list[Job]] = {}
        for job in jobs:
            if job.cancelled.is_set():
                job.on_end()
                continue
            job.sinks = [_sink(job, i) for i in range(job.cfg.num_samples)]
            by_model.setdefault(id(job.model), []).append(job)
        for key, group in by_model.items():
            if key not in self._batches:
                self._batches[key] = _Batch(group[0].model, group[0].tokenizer, group[0].model.head.weight.device)
            try:
                self._batches[key].join(group)
            except Exception as e:  # noqa: BLE001 - reported to these clients, the loop goes on
                log.exception("generation failed")
                for job in group:
                    _end(job, {"error": f"generation failed: {e}".splitlines()[0]})

    def _turn(self, batch: _Batch) -> None:
        """Step the batch once (when some job still needs a token), then let finished and cancelled jobs go."""
        if any(not s.done for job, _ in batch.jobs for s in job.sinks if not job.cancelled.is_set()):
            self.max_rows = max(self.max_rows, sum(j.cfg.num_samples for j, _ in batch.jobs))
            batch.advance()
        keep = []
        for job, _ in batch.jobs:
            if job.cancelled.is_set():
                job.on_end()
                keep.append(False)
            elif all(s.done for s in job.sinks):
                for sink in job.sinks:
                    sink.finish()
                _end(job, job.finish_event())
                keep.append(False)
            else:
                keep.append(True)
        if not all(keep):
            batch.drop(keep)


def _sink(job: Job, index: int) -> TextSink:
    """Sample `index` of the job: its text streamed as events."""
    return TextSink(job.tokenizer, job.cfg.length, job.cfg.stop, lambda text: job.emit({"index": index, "text": text}))


def _end(job: Job, event: dict) -> None:
    job.emit(event)
    job.on_end()


def _beam(job: Job) -> None:
    """Beam search (or n-best) alone, streaming the text all hypotheses share; stops when cancelled."""

    def emit(index: int, text: str) -> None:
        if job.cancelled.is_set():
            raise Cancelled
        job.emit({"index": index, "text": text})

    try:
        with torch.inference_mode():
            samples = generate(job.model, job.tokenizer, job.cfg, job.model.head.weight.device, emit)
        reason = "length" if samples and len(samples[0].text) >= job.cfg.length else "stop"
        out = [{"index": i, "text": s.text, "logprob": s.logprob, "seed": s.seed} for i, s in enumerate(samples)]
        job.emit({"done": True, "finish_reason": reason, "prime": job.cfg.prime, "seed": job.seed, "samples": out})
    except Cancelled:
        pass
    except Exception as e:  # noqa: BLE001 - reported to the one client
        log.exception("beam search failed")
        job.emit({"error": f"generation failed: {e}".splitlines()[0]})
    finally:
        job.on_end()
