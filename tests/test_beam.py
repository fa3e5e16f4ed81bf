"""Beam search: the fast loop in charrnn.sample against the plain one it replaced (kept here as
the reference), on small random models, for the settings that change what it returns or streams."""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import pytest
import torch

from charrnn import checkpoint
from charrnn.config import ModelConfig, SampleConfig
from charrnn.model import CharRNN
from charrnn.sample import Sample, TextSink, Utf8Guard, _start, generate, prime_ids
from charrnn.tokenizers import ByteTokenizer, CharTokenizer, decode


def reference_beam_search(model, tokenizer, cfg, device, seed, emit):
    """charrnn's beam search as of a0cd22a: every hypothesis a list of ids, copied per candidate."""
    k = cfg.beam
    prime = prime_ids(tokenizer, cfg, torch.Generator().manual_seed(seed), model.newline_first)
    logits, step, states, precision = _start(model, cfg, prime, 1, device)
    live: list[list[int]] = [[]]
    chars = [0]
    piece_chars = [sum((b & 0xC0) != 0x80 for b in p) for p in tokenizer.pieces]
    tail = 4 * max((len(s) for s in cfg.stop), default=0) + 3
    scores = torch.zeros(1, dtype=torch.float64, device=device)
    guard = Utf8Guard.for_pieces(tokenizer.pieces, device)
    utf8 = torch.zeros(1, dtype=torch.long, device=device)
    finished = []
    shared = TextSink(tokenizer, cfg.length, cfg.stop, (lambda t: emit(0, t)) if emit else None)
    shared_len = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        while live and len(finished) < k:
            logprobs = logits.double().log_softmax(-1)
            total = (scores[:, None] + (guard.mask(logprobs, utf8) if guard else logprobs)).flatten()
            top = torch.topk(total, min(2 * k, total.numel()))
            rows, next_live, next_chars, next_scores = [], [], [], []
            for score, flat in zip(top.values.tolist(), top.indices.tolist(), strict=False):
                if score == -math.inf:
                    break
                row, tok = divmod(flat, logits.shape[-1])
                n_chars = chars[row] + piece_chars[tok]
                if len(rows) == k and n_chars < cfg.length and not cfg.stop:
                    continue
                ids = live[row] + [tok]
                if n_chars >= cfg.length or (cfg.stop and any(s in decode(tokenizer, ids[-tail:]) for s in cfg.stop)):
                    text = reference_finished_text(tokenizer, ids, cfg)
                    finished.append((score / max(1, len(text)) ** cfg.length_penalty, score, text, ids))
                elif len(rows) < k:
                    rows.append(row), next_live.append(ids), next_chars.append(n_chars), next_scores.append(score)
            live, chars = next_live, next_chars
            common = reference_common_prefix(live + [f[3] for f in finished], shared_len)
            if common > shared_len:
                ids = (live or [f[3] for f in finished])[0][shared_len:common]
                shared.feed(ids, [0.0] * len(ids))
                shared_len = common
            if not live:
                break
            index = torch.tensor(rows, device=device)
            states = [s.index_select(0, index) for s in states]
            scores = torch.tensor(next_scores, dtype=torch.float64, device=device)
            last = torch.tensor([t[-1] for t in live], device=device)
            if guard:
                utf8 = guard.advance(utf8.index_select(0, index), last)
            logits, states = step(last, states)
    finished.sort(key=lambda f: f[0], reverse=True)
    best = finished[: cfg.n_best]
    if best and emit:
        emit(0, best[0][2][len(shared.text) :])
    elapsed = time.perf_counter() - t0
    settings = asdict(cfg) | {"seed": seed, "precision": precision}
    return [
        Sample(text, cfg.prime, logprob, seed, len(text) / max(elapsed, 1e-9), settings) for _, logprob, text, _ in best
    ]


def reference_finished_text(tokenizer, ids, cfg):
    text = decode(tokenizer, ids)
    for stop in cfg.stop:
        if (at := text.find(stop)) >= 0:
            text = text[:at]
    return text[: cfg.length]


def reference_common_prefix(seqs, start):
    if not seqs:
        return start
    first = seqs[0]
    for i in range(start, min(len(s) for s in seqs)):
        if any(s[i] != first[i] for s in seqs):
            return i
    return min(len(s) for s in seqs)


CHARS = list("\n abcdeé.") + ["\u4e2d"]


def random_model(cell: str, vocab: int, scale: float = 3.0, seed: int = 0) -> CharRNN:
    """A tiny random network with weights scaled up, so that its text varies and its hypotheses
    agree for a while and then part, as a trained model's do."""
    torch.manual_seed(seed)
    model = CharRNN(ModelConfig(vocab_size=vocab, cell=cell, hidden_size=32, embed_size=16, layers=2, dropout=0.0))
    with torch.no_grad():
        model.embed.weight.mul_(10)
        model.head.weight.mul_(10)
        for name, p in model.rnn.named_parameters():
            if "weight" in name:
                p.mul_(scale)
    return model.eval()


@pytest.fixture(scope="module", params=["trained-lstm", "random-gru"])
def model_and_tok(request):
    if request.param == "trained-lstm":
        return checkpoint.build_model(checkpoint.load(request.getfixturevalue("trained_run") / "best.pt"))
    return random_model("gru", len(CHARS)), CharTokenizer(CHARS)


def both(model, tok, **kw):
    """(samples, streamed pieces) from charrnn's beam search and from the reference."""
    cfg = SampleConfig(seed=3, **kw)
    runs = []
    for search in ("new", "reference"):
        streamed = []

        def emit(i, text, streamed=streamed):
            streamed.append((i, text))

        if search == "new":
            samples = generate(model, tok, cfg, emit=emit)
        else:
            samples = reference_beam_search(model, tok, cfg, torch.device("cpu"), cfg.seed, emit)
        runs.append(([(s.text, s.logprob, s.prime, s.seed, s.settings) for s in samples], streamed))
    return runs


CASES = [
    {"beam": 1, "length": 60},
    {"beam": 4, "length": 150, "n_best": 4},
    {"beam": 16, "length": 200, "n_best": 5},
    {"beam": 16, "length": 50, "prime": "e "},
    {"beam": 4, "length": 150, "stop": ["\n"], "n_best": 3},
    {"beam": 16, "length": 150, "stop": ["e.", "\n\n", "a"], "n_best": 16, "length_penalty": 0.5},
    {"beam": 8, "length": 100, "stop": ["\n"], "length_penalty": 2.0, "n_best": 8},
    {"beam": 3, "length": 0},
    {"beam": 16, "length": 1},
]


@pytest.mark.parametrize("precision", ["fp32", "auto"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v!r}" for k, v in c.items()))
def test_beam_search_returns_and_streams_what_the_reference_does(model_and_tok, precision, case):
    new, ref = both(*model_and_tok, precision=precision, **case)
    assert new == ref
    assert new[0] and "".join(t for _, t in new[1]) == new[0][0][0]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("scale", [0.5, 2.0, 4.0])
def test_beam_search_agrees_on_flat_and_peaked_models(cell, scale):
    model = random_model(cell, len(CHARS), scale, seed=1)
    new, ref = both(model, CharTokenizer(CHARS), beam=16, length=90, n_best=16, stop=["a\n"], precision="fp32")
    assert new == ref


@pytest.mark.parametrize("kw", [{"beam": 4}, {"beam": 16, "stop": ["\xe9"], "n_best": 6}, {"beam": 5, "stop": ["é."]}])
def test_beam_search_over_bytes_keeps_the_utf8_guard(kw):
    tok = ByteTokenizer()
    model = random_model("gru", 256, 0.5, seed=2)
    with torch.no_grad():  # make multi-byte characters likely, so the guard has work to do
        model.head.weight.mul_(0.1)
        model.head.bias[0xC3] += 4.0
        model.head.bias[0xA9] += 3.0
    new, ref = both(model, tok, length=60, precision="fp32", prime="é", **kw)
    assert new == ref
