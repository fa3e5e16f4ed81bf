from __future__ import annotations

import io
import math
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn import checkpoint, runtime, trainer
from charrnn import sample as sample_module
from charrnn.config import DataConfig, ModelConfig, SampleConfig, TrainConfig
from charrnn.errors import CharRNNError
from charrnn.model import CharRNN, HalfStepper
from charrnn.sample import (
    STRATEGIES,
    Utf8Guard,
    apply_min_p,
    apply_repetition_penalty,
    apply_top_k,
    apply_top_p,
    generate,
    pick,
)
from charrnn.tokenizers import ByteTokenizer, CharTokenizer
from charrnn.ui import SampleWriter


@pytest.fixture(scope="module")
def model_and_tok(trained_run):
    return checkpoint.build_model(checkpoint.load(trained_run / "best.pt"))


def run(model_and_tok, **kw):
    model, tok = model_and_tok
    return generate(model, tok, SampleConfig(**kw))


def test_length_counts_generated_characters(model_and_tok):
    assert len(run(model_and_tok, length=123, seed=1)[0].text) == 123
    assert run(model_and_tok, length=0, seed=1)[0].text == ""


def test_greedy_top_k_1_and_beam_1_agree(model_and_tok):
    greedy = run(model_and_tok, length=80, temperature=0, prime="KING")[0].text
    assert run(model_and_tok, length=80, top_k=1, seed=3, prime="KING")[0].text == greedy
    assert run(model_and_tok, length=80, beam=1, prime="KING")[0].text == greedy


def test_seeds(model_and_tok):
    a = run(model_and_tok, length=100, seed=5)[0].text
    assert run(model_and_tok, length=100, seed=5)[0].text == a
    assert run(model_and_tok, length=100, seed=6)[0].text != a


def test_a_batch_of_samples_equals_single_runs_seeded_in_turn(model_and_tok):
    batch = run(model_and_tok, length=60, num_samples=4, seed=10, temperature=0.9, prime="The ")
    singles = [run(model_and_tok, length=60, seed=10 + i, temperature=0.9, prime="The ")[0] for i in range(4)]
    assert [s.text for s in batch] == [s.text for s in singles]
    assert [s.seed for s in batch] == [10, 11, 12, 13]
    assert len({s.text for s in batch}) > 1


def test_precision_of_the_generation_step(model_and_tok):
    auto = run(model_and_tok, length=50, seed=4)[0]
    assert auto.settings["precision"] == ("fp16" if HalfStepper.supports("lstm", torch.device("cpu")) else "fp32")
    exact = run(model_and_tok, length=50, seed=4, precision="fp32")[0]
    assert exact.settings["precision"] == "fp32" and len(exact.text) == 50
    # The LSTM variants have no fp16 kernel: auto gives fp32, asking for fp16 is an error.
    variant = CharRNN(ModelConfig(vocab_size=model_and_tok[1].vocab_size, cell="lstm-cifg", hidden_size=8))
    assert generate(variant, model_and_tok[1], SampleConfig(length=5))[0].settings["precision"] == "fp32"
    with pytest.raises(CharRNNError, match="precision fp16 needs the CPU"):
        generate(variant, model_and_tok[1], SampleConfig(length=5, precision="fp16"))


def test_stop_string_ends_the_sample(model_and_tok):
    text = run(model_and_tok, length=2000, seed=2, stop=["\n"], prime="A")[0].text
    assert "\n" not in text and len(text) < 2000
    streamed = []
    model, tok = model_and_tok
    out = generate(
        model, tok, SampleConfig(length=2000, seed=2, stop=["\n"], prime="A"), emit=lambda i, t: streamed.append(t)
    )
    assert "".join(streamed) == out[0].text == text


def test_unknown_prime_characters(model_and_tok):
    with pytest.raises(CharRNNError, match="not in the model's vocabulary"):
        run(model_and_tok, length=5, prime="日本")
    assert len(run(model_and_tok, length=5, prime="日本A", unknown="skip", seed=1)[0].text) == 5


def test_top_p_never_samples_outside_the_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.1, 0.06, 0.04]])
    filtered = apply_top_p(probs.log(), 0.75)
    assert torch.isinf(filtered[0, 2:]).all() and torch.isfinite(filtered[0, :2]).all()
    gen = torch.Generator().manual_seed(0)
    draws = pick(filtered.expand(5000, -1), torch.rand(5000, generator=gen))
    assert set(draws.tolist()) == {0, 1}
    assert abs((draws == 0).float().mean().item() - 0.5 / 0.8) < 0.03  # renormalized within the nucleus


def test_top_k_keeps_k():
    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    assert torch.isfinite(apply_top_k(logits, 2)).tolist() == [[False, True, True, False]]


@settings(max_examples=60, deadline=None)
@given(
    logits=st.lists(st.floats(-20, 20), min_size=2, max_size=12),
    min_p=st.floats(0.0, 1.0),
)
def test_min_p_keeps_the_top_token_and_drops_what_is_below_the_threshold(logits, min_p):
    x = torch.tensor([logits])
    kept = torch.isfinite(apply_min_p(x, min_p))
    probs = x.softmax(-1)
    assert kept[0, probs.argmax()]  # the most likely token always survives
    assert torch.equal(kept, probs >= min_p * probs.max())  # below the threshold: removed; above it: kept
    if min_p == 0:
        assert torch.equal(apply_min_p(x, min_p), x)


def test_min_p_follows_temperature_and_is_listed_once():
    names = [name for name, _ in STRATEGIES]
    assert len(set(names)) == len(names) and names.index("temperature") < names.index("min_p")
    assert set(names) <= set(SampleConfig.__dataclass_fields__)
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    cfg = SampleConfig(temperature=0.5, min_p=0.1)
    out, seen = logits, torch.zeros_like(logits, dtype=torch.bool)
    for name, strategy in STRATEGIES:
        out = strategy(out, getattr(cfg, name), seen)
    # At temperature 0.5 the third token is e^-4 = 0.018 of the top one: below 0.1, so gone; the second stays.
    assert torch.isfinite(out).tolist() == [[True, True, False]]


def test_min_p_changes_only_what_it_should(model_and_tok):
    off = run(model_and_tok, length=200, seed=3)[0]
    same = run(model_and_tok, length=200, seed=3, min_p=0.0)[0]
    strict = run(model_and_tok, length=200, seed=3, min_p=0.5, temperature=1.5)[0]
    assert off.text == same.text and strict.settings["min_p"] == 0.5 and len(strict.text) == 200


class ChainModel:
    """A hand-built model whose next-token distribution depends only on the last token."""

    def __init__(self, table: dict[int, list[float]], vocab: int) -> None:
        self.cfg = SimpleNamespace(cell="chain")  # a cell without fp16 kernels: the fp32 path
        self.newline_first = False  # read a prime as it is
        self.logp = torch.full((vocab, vocab), -1e9)
        for prev, probs in table.items():
            self.logp[prev] = torch.tensor(probs).log()

    def eval(self):
        return self

    def init_state(self, batch, device=None):
        return (torch.zeros(1, batch, 1),)

    def __call__(self, ids, state):  # both the prime's call and a step: the state does not matter
        return self.logp[ids], state

    def stepper(self, precision="fp32"):
        return self

    def split(self, state):
        return list(state[0].unbind(0))


def test_beam_search_finds_the_sequence_greedy_misses():
    tok = CharTokenizer(["a", "b", "c", "s"])  # s is the start symbol
    # After s: a 0.6, b 0.4. After a: all three 1/3. After b: c 0.9. Greedy takes a (0.6 * 1/3 = 0.2);
    # the most probable two-step text is bc (0.4 * 0.9 = 0.36).
    model = ChainModel(
        {
            3: [0.6, 0.4, 0.0, 0.0],
            0: [1 / 3, 1 / 3, 1 / 3, 0.0],
            1: [0.05, 0.05, 0.9, 0.0],
            2: [1 / 3, 1 / 3, 1 / 3, 0.0],
        },
        4,
    )
    greedy = generate(model, tok, SampleConfig(length=2, temperature=0, prime="s"))[0]
    assert greedy.text[0] == "a"
    best = generate(model, tok, SampleConfig(length=2, beam=3, n_best=2, prime="s"))
    assert best[0].text == "bc"
    assert best[0].logprob == pytest.approx(math.log(0.36))
    assert best[1].logprob <= best[0].logprob


def test_beam_streams_exactly_the_returned_text(model_and_tok):
    model, tok = model_and_tok
    streamed = []
    out = generate(model, tok, SampleConfig(length=150, beam=4, prime="The"), emit=lambda i, t: streamed.append(t))
    assert "".join(streamed) == out[0].text and len(out[0].text) == 150


def test_beam_streams_the_agreed_prefix_before_the_search_ends(model_and_tok, monkeypatch):
    model, tok = model_and_tok
    steps = 0
    make = model.stepper

    def counting_stepper(precision="fp32"):
        inner = make(precision)

        class Counting:
            split = staticmethod(inner.split)

            def __call__(self, ids, states):
                nonlocal steps
                steps += 1
                return inner(ids, states)

        return Counting()

    monkeypatch.setattr(model, "stepper", counting_stepper)
    seen_at = []  # (model steps so far, characters streamed so far)
    streamed = []

    def emit(i, text):
        streamed.append(text)
        seen_at.append((steps, len("".join(streamed))))

    generate(model, tok, SampleConfig(length=200, beam=4, prime="The"), emit=emit)
    assert len(seen_at) > 2
    assert seen_at[0][0] < 100  # the first text left long before the 200th step
    assert any(chars >= 100 for at, chars in seen_at if at < steps)


def test_repetition_penalty():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    seen = torch.tensor([[True, True, False, False]])
    assert apply_repetition_penalty(logits, seen, 2.0).tolist() == [[1.0, -2.0, 0.5, 3.0]]
    assert torch.equal(apply_repetition_penalty(logits, seen, 1.0), logits)


def test_repetition_penalty_breaks_greedy_loops(model_and_tok):
    # Greedy decoding of a briefly trained model falls into a loop over a few characters;
    # penalizing seen tokens sends it to others first.
    plain = run(model_and_tok, length=300, temperature=0, prime="The ")[0].text
    penalized = run(model_and_tok, length=300, temperature=0, prime="The ", repetition_penalty=1.5)[0].text
    assert len(set(penalized[:30])) > len(set(plain[:30]))


@pytest.fixture(scope="module")
def bpe_model(corpus_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("bpe")
    trainer.train(
        DataConfig(sources=[str(corpus_file)], tokenizer="bpe", vocab_size=400, cache_dir=str(root / "cache")),
        {"hidden_size": 32, "embed_size": 16, "layers": 1, "dropout": 0.0},
        TrainConfig(max_steps=30, eval_every=30, batch_size=8, seq_len=16, warmup_steps=5, lr=1e-2),
        out=str(root / "run"),
    )
    return checkpoint.build_model(checkpoint.load(root / "run" / "best.pt"))


def test_beam_search_over_subwords(bpe_model):
    model, tok = bpe_model
    assert tok.kind == "bpe"
    streamed = []
    out = generate(
        model, tok, SampleConfig(length=57, beam=4, n_best=3, prime="KING"), emit=lambda i, t: streamed.append(t)
    )
    assert [len(s.text) for s in out] == [57, 57, 57]
    assert "".join(streamed) == out[0].text
    assert out[0].logprob >= out[1].logprob >= out[2].logprob
    sampled = generate(model, tok, SampleConfig(length=57, seed=1, stop=["\n"], prime="KING"))[0].text
    assert len(sampled) <= 57 and "\n" not in sampled


def test_writer_echoes_the_prime_and_separates_samples(model_and_tok):
    model, tok = model_and_tok
    cfg = SampleConfig(length=20, num_samples=3, seed=1, prime="AB")
    stream = io.StringIO()
    writer = SampleWriter(stream, "text", "\n--\n", cfg)
    samples = generate(model, tok, cfg, emit=writer.emit)
    writer.finish(samples)
    assert stream.getvalue() == "\n--\n".join("AB" + s.text for s in samples)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"min_p": 1.5}, "min_p"),
        ({"min_p": -0.1}, "min_p"),
        ({"beam": 0}, "beam"),
        ({"length": -1}, "length"),
        ({"num_samples": 0}, "num_samples"),
        ({"top_k": -2}, "top_k"),
        ({"precision": "bf16"}, "precision"),
    ],
)
def test_bad_settings_are_named(kw, message):
    """The library names the field; the CLI shows it as the flag (tests/test_cli.py)."""
    with pytest.raises(CharRNNError, match=message) as caught:
        SampleConfig(**kw)
    assert caught.value.fields[0] == message


def test_utf8_guard_allows_only_well_formed_sequences():
    pieces = [b"a", "é".encode(), *(bytes([b]) for b in range(0x80, 0x100))]
    guard = Utf8Guard(pieces, torch.device("cpu"))
    allowed = {s: {pieces[t] for t in range(len(pieces)) if not guard.blocked[s, t]} for s in range(8)}
    assert allowed[0] == {b"a", "é".encode()} | {bytes([b]) for b in [*range(0xC2, 0xF5)]}
    after_e4 = int(guard.advance(torch.tensor([0]), torch.tensor([pieces.index(b"\xe4")])))
    assert allowed[after_e4] == {bytes([b]) for b in range(0x80, 0xC0)}
    after_e0 = int(guard.advance(torch.tensor([0]), torch.tensor([pieces.index(b"\xe0")])))
    assert allowed[after_e0] == {bytes([b]) for b in range(0xA0, 0xC0)}  # no overlong forms


@pytest.mark.parametrize("beam", [None, 3])
def test_an_untrained_byte_model_still_writes_well_formed_utf8(beam):
    torch.manual_seed(0)
    model, tok = CharRNN(ModelConfig(vocab_size=256, hidden_size=32, embed_size=16)), ByteTokenizer()
    length = 100 if beam else 300
    cfg = SampleConfig(length=length, seed=1, temperature=1.5, num_samples=1 if beam else 4, beam=beam)
    texts = [s.text for s in generate(model, tok, cfg)]
    assert all(len(t) == length and "\ufffd" not in t for t in texts)
    if beam is None:  # sampling hot does write non-ASCII (beam search prefers one byte per character)
        assert sum(ord(c) > 0x7F for t in texts for c in t) > 100


# CUDA joins where this machine has it (the GPU machine a session is sometimes lent), never as a skip.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_stepped_prime_and_one_fed_at_once_reach_the_same_state(cell, device, monkeypatch):
    """Short primes go through the stepper, long ones through the sequence kernel: the same network either way."""
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=20, cell=cell, hidden_size=32, embed_size=16, layers=2, dropout=0.0))
    device = runtime.resolve_device(device)  # as the commands do: on a GPU, fp32 turns cuDNN's TF32 off
    model = model.to(device).eval()
    prime = torch.randint(20, (12,))
    cfg = SampleConfig(precision="fp32")
    results = []
    for threshold in (len(prime), len(prime) - 1):  # stepped, then fed at once
        monkeypatch.setattr(sample_module, "STEPPED_PRIME", threshold)
        logits, _, states, _ = sample_module._start(model, cfg, prime, 3, device)
        results.append((logits, states))
    (stepped, stepped_states), (at_once, at_once_states) = results
    assert stepped.shape == (3, 20)
    torch.testing.assert_close(stepped, at_once, rtol=1e-5, atol=1e-5)
    for a, b in zip(stepped_states, at_once_states, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_a_model_trained_on_documents_reads_its_prime_after_a_newline():
    from dataclasses import replace

    tok = CharTokenizer(list("\nabc "))
    torch.manual_seed(0)
    documents = CharRNN(ModelConfig(vocab_size=tok.vocab_size, hidden_size=16, embed_size=8, start="newline"))
    before = CharRNN(replace(documents.cfg, start="reset"))  # the same weights, read as before documents
    before.load_state_dict(documents.state_dict())
    cfg = SampleConfig(prime="ab c", length=40, seed=5, precision="fp32")
    new = generate(documents, tok, cfg)[0]
    old = generate(before, tok, replace(cfg, prime="\nab c"))[0]
    assert new.text == old.text and new.prime == "ab c"  # both fed "\nab c"
    assert (
        generate(documents, tok, replace(cfg, prime=""))[0].text
        == generate(before, tok, replace(cfg, prime=""))[0].text
    )
