"""The server's step loop: requests that arrive together join in one batched prime step, and each
request's text is still what `charrnn sample` gives alone."""

from __future__ import annotations

import threading

import pytest
import torch

from charrnn.config import ModelConfig, SampleConfig
from charrnn.engine import Engine, Job, _Batch
from charrnn.model import CharRNN
from charrnn.sample import STEPPED_PRIME, Draws, _start, generate, prime_ids
from charrnn.tokenizers import CharTokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak.\n"


def _model(cell: str) -> tuple[CharRNN, CharTokenizer]:
    torch.manual_seed(0)
    tok = CharTokenizer(sorted(set(TEXT)))
    cfg = ModelConfig(vocab_size=tok.vocab_size, cell=cell, hidden_size=48, embed_size=16, layers=2, dropout=0.0)
    return CharRNN(cfg).eval(), tok


def _job(model: CharRNN, tok: CharTokenizer, cfg: SampleConfig, events: list[dict], done: threading.Event) -> Job:
    generators = [torch.Generator().manual_seed(cfg.seed + i) for i in range(cfg.num_samples)]
    prime = prime_ids(tok, cfg, generators[0], model.newline_first)
    return Job(model, tok, cfg, cfg.seed, generators, prime, events.append, done.set)


PRIMES = ["", "a", "e", "Spe", "All", "hear me speak. " * 3]  # none (a newline), 1, 1, 3, 3 and 45 tokens


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_primes_joined_together_reach_the_states_each_reaches_alone(cell):
    model, tok = _model(cell)
    assert len(PRIMES[-1]) > STEPPED_PRIME  # one long prime takes the sequence kernel, as alone
    cfgs = [SampleConfig(prime=p, seed=i, num_samples=1 + i % 2, precision="fp32") for i, p in enumerate(PRIMES)]
    jobs = [_job(model, tok, c, [], threading.Event()) for c in cfgs]
    batch = _Batch(model, tok, torch.device("cpu"))
    batch.join(jobs[:2])  # a batch already running, then a wave
    batch.join(jobs[2:])
    at = 0
    for job in jobs:
        n = job.cfg.num_samples
        logits, _, states, _ = _start(model, job.cfg, job.prime, n, torch.device("cpu"))
        torch.testing.assert_close(batch.logits[at : at + n], logits, rtol=1e-5, atol=1e-6)
        for joined, alone in zip(batch.states, states, strict=True):
            torch.testing.assert_close(joined[at : at + n], alone, rtol=1e-5, atol=1e-6)
        at += n
    assert at == batch.logits.shape[0]


def test_a_wave_of_requests_gets_the_texts_each_gets_alone(monkeypatch):
    model, tok = _model("lstm")
    waves = []
    join = _Batch.join
    monkeypatch.setattr(_Batch, "join", lambda self, jobs: (waves.append(len(jobs)), join(self, jobs)))
    cfgs = [
        SampleConfig(
            prime=p,
            seed=10 + i,
            length=120,
            temperature=0 if i % 3 == 0 else 0.9,
            repetition_penalty=1.3 if i % 4 == 1 else 1.0,  # such a job chooses alone
            precision="fp32",
        )
        for i, p in enumerate(PRIMES * 2)
    ]
    engine = Engine()
    runs = [([], threading.Event()) for _ in cfgs]
    with engine._wake:  # held: every job is pending when the loop next looks, so they join as one wave
        for cfg, (events, done) in zip(cfgs, runs, strict=True):
            engine.submit(_job(model, tok, cfg, events, done))
    for _, done in runs:
        assert done.wait(30)
    engine.stop()
    assert waves == [len(cfgs)]  # one join, one batched step per prime length
    for cfg, (events, _) in zip(cfgs, runs, strict=True):
        final = events[-1]
        assert [s["text"] for s in final["samples"]] == [s.text for s in generate(model, tok, cfg)]


def test_rows_draw_the_uniforms_their_samples_draw_alone():
    """Rows that join at different steps and leave keep the stream `charrnn sample` draws for them,
    across the 256-draw refills."""
    seeds = {"a": [1, 2], "b": [7]}
    alone = {k: Draws([torch.Generator().manual_seed(s) for s in v], torch.device("cpu")) for k, v in seeds.items()}
    rows = Draws([], torch.device("cpu")).plus([torch.Generator().manual_seed(s) for s in seeds["a"]])
    for _ in range(100):
        torch.testing.assert_close(rows.next(), alone["a"].next(), rtol=0, atol=0)
    rows = rows.plus([torch.Generator().manual_seed(s) for s in seeds["b"]])
    for _ in range(300):
        torch.testing.assert_close(rows.next(), torch.cat([alone["a"].next(), alone["b"].next()]), rtol=0, atol=0)
    rows = rows.only([2])  # a's rows leave
    for _ in range(300):
        torch.testing.assert_close(rows.next(), alone["b"].next(), rtol=0, atol=0)


def test_a_join_that_fails_leaves_the_batch_as_it_was():
    model, tok = _model("gru")
    batch = _Batch(model, tok, torch.device("cpu"))
    running = _job(model, tok, SampleConfig(prime="All", seed=1, precision="fp32"), [], threading.Event())
    running.sinks = []
    batch.join([running])
    before = (batch.logits.clone(), [s.clone() for s in batch.states], list(batch.jobs), batch.uniforms.table.clone())
    broken = _job(model, tok, SampleConfig(prime="Spe", seed=2, precision="fp32"), [], threading.Event())
    broken.prime = torch.tensor([0, tok.vocab_size + 5])  # no such token: feeding it fails
    with pytest.raises(IndexError):
        batch.join([broken])
    torch.testing.assert_close(batch.logits, before[0], rtol=0, atol=0)
    torch.testing.assert_close(batch.states, before[1], rtol=0, atol=0)
    assert batch.jobs == before[2] and len(batch.utf8) == 1
    torch.testing.assert_close(batch.uniforms.table, before[3], rtol=0, atol=0)
    batch.advance()  # the batch goes on for the job it had
