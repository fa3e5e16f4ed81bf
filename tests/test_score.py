"""charrnn.score: token and line log-probabilities and activations, checked against the evaluator and the model."""

from __future__ import annotations

import base64
import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn import checkpoint
from charrnn.cells import CIFG, LSTMVariant
from charrnn.config import ModelConfig
from charrnn.errors import CharRNNError
from charrnn.evaluate import evaluate_text
from charrnn.model import CharRNN, HalfStepper
from charrnn.score import activations, score_lines, score_text
from charrnn.tokenizers import ByteTokenizer, CharTokenizer
from tests.skip_rule import machine_lacks


@pytest.fixture(scope="module")
def loaded(trained_run, corpus_file):
    model, tok = checkpoint.build_model(checkpoint.load(trained_run / "best.pt"))
    return model.eval(), tok, corpus_file.read_text()[1000:1300]  # play text: in the model's vocabulary


def test_logprobs_sum_to_the_evaluators_nats(loaded):
    model, tok, text = loaded
    result = score_text(model, tok, text, top_k=3)
    # Both read the text from the reset state after a newline, as the model was trained: every token predicted.
    full = evaluate_text(model, tok, [text], unknown="error")
    assert result.nats == pytest.approx(full.nats, rel=1e-5)
    assert result.nats == pytest.approx(-sum(t.logprob for t in result.tokens), rel=1e-9)
    assert result.bits_per_char == pytest.approx(result.nats / len(text) / math.log(2))
    assert "".join(t.text for t in result.tokens) == text
    assert [t.start for t in result.tokens] == list(range(len(text)))


def test_chunks_do_not_change_the_scores(loaded):
    model, tok, text = loaded
    whole = score_text(model, tok, text, top_k=2)
    cut = score_text(model, tok, text, top_k=2, chunk_tokens=7)
    assert [t.logprob for t in cut.tokens] == pytest.approx([t.logprob for t in whole.tokens], abs=1e-5)
    assert [[g[0] for g in t.top] for t in cut.tokens] == [[g[0] for g in t.top] for t in whole.tokens]


def test_top_k_guesses_are_sorted_probabilities(loaded):
    model, tok, text = loaded
    result = score_text(model, tok, text, top_k=5)
    for token in result.tokens:
        probs = [p for _, p in token.top]
        assert len(probs) == 5
        assert probs == sorted(probs, reverse=True)
        assert 0 < sum(probs) <= 1 + 1e-6
        # the token itself is among the guesses exactly when it is at least as likely as the fifth
        if math.exp(token.logprob) > probs[-1] + 1e-6:
            assert token.text in [g for g, _ in token.top]
    assert score_text(model, tok, text, top_k=0).tokens[0].top == []
    d = result.to_dict()
    assert d["tokens"][0]["top"][0][0] == result.tokens[0].top[0][0]


def test_fp16_steps_score_close_to_fp32(loaded):
    model, tok, text = loaded
    if not HalfStepper.supports(model.cfg.cell, torch.device("cpu")):
        pytest.skip(machine_lacks("fbgemm fp16 kernels in this torch build"))
    exact = score_text(model, tok, text, top_k=0)
    half = score_text(model, tok, text, top_k=0, precision="fp16")
    assert half.nats == pytest.approx(exact.nats, rel=1e-2)


def test_bad_input_is_an_error(loaded):
    model, tok, text = loaded
    with pytest.raises(CharRNNError, match="empty"):
        score_text(model, tok, "")
    with pytest.raises(CharRNNError, match="top_k"):
        score_text(model, tok, text, top_k=-1)


def test_lines_score_independently_of_each_other(loaded):
    model, tok, text = loaded
    letters = [c for c in tok.chars if c.isalpha()]
    noise = "".join(random.Random(1).choice(letters) for _ in range(30))
    lines = [line for line in text.splitlines() if len(line) > 10] + ["", noise]
    scores = {lines[s.line - 1]: s for s in score_lines(model, tok, lines)}
    shuffled = lines[:]
    random.Random(0).shuffle(shuffled)
    for s in score_lines(model, tok, shuffled):
        line = shuffled[s.line - 1]
        assert s.nats == pytest.approx(scores[line].nats, rel=1e-5)
        assert s.characters == len(line) + 1  # the newline counted
    alone = score_text(model, tok, lines[1] + "\n", top_k=0)
    assert scores[lines[1]].nats == pytest.approx(alone.nats, rel=1e-5)
    assert scores[lines[1]].bits_per_char == pytest.approx(alone.bits_per_char, rel=1e-5)
    assert scores[noise].bits_per_char > scores[lines[1]].bits_per_char


def test_unknown_characters_name_their_line(loaded):
    model, tok, text = loaded
    with pytest.raises(CharRNNError, match="line 2"):
        list(score_lines(model, tok, ["ROMEO", "\u2603"]))


def test_top_layer_hidden_is_the_models_output(loaded):
    model, tok, text = loaded
    act = activations(model, tok, text, layer=-1)
    assert act.layer == model.cfg.layers - 1
    ids = torch.as_tensor(tok.encode("\n" + text), dtype=torch.long)
    with torch.inference_mode():
        out, _ = model.rnn(model.embed(ids)[None])
    assert np.allclose(act.values.astype(np.float32), out[0, 1:].numpy(), atol=2e-3)


def test_lstm_gates_make_the_cell_state(loaded):
    model, tok, text = loaded
    got = {k: activations(model, tok, text, layer=0, kind=k).values.astype(np.float64) for k in ("hidden", "cell")}
    gates = {k: activations(model, tok, text, layer=0, kind=k).values.astype(np.float64) for k in ("input", "forget")}
    g = activations(model, tok, text, layer=0, kind="cell_gate").values.astype(np.float64)
    o = activations(model, tok, text, layer=0, kind="output").values.astype(np.float64)
    c = got["cell"]
    assert np.allclose(
        c[1:], gates["forget"][1:] * c[:-1] + gates["input"][1:] * g[1:], rtol=1e-2, atol=1e-2
    )  # float16 values
    assert np.allclose(got["hidden"], o * np.tanh(c), rtol=1e-2, atol=1e-2)
    assert all(((v >= 0) & (v <= 1)).all() for v in gates.values())


def test_cifg_input_gate_is_one_minus_forget():
    cfg = ModelConfig(cell="lstm-cifg", vocab_size=4, hidden_size=8, embed_size=4, layers=2)
    model = CharRNN(cfg).eval()
    assert isinstance(model.rnn, LSTMVariant) and CIFG
    tok = CharTokenizer(["\n", "a", "b", "c"])
    i = activations(model, tok, "abcab\nca", layer=1, kind="input").values.astype(np.float32)
    f = activations(model, tok, "abcab\nca", layer=1, kind="forget").values.astype(np.float32)
    assert np.allclose(i, 1 - f, atol=2e-3)
    h = activations(model, tok, "abcab\nca", layer=1).values
    ids = torch.as_tensor(tok.encode("\nabcab\nca"), dtype=torch.long)
    with torch.inference_mode():
        out, _ = model.rnn(model.embed(ids)[None])
    assert np.allclose(h.astype(np.float32), out[0, 1:].numpy(), atol=2e-3)


def test_activations_serialize_to_their_shape(loaded):
    model, tok, text = loaded
    d = activations(model, tok, text, layer=1, kind="cell").to_dict()
    values = np.frombuffer(base64.b64decode(d["data"]), dtype="<f2").reshape(d["shape"])
    assert d["shape"] == [len(text), model.cfg.hidden_size] and d["units"] == model.cfg.hidden_size
    assert d["dtype"] == "float16" and d["kind"] == "cell" and len(d["tokens"]) == len(text)
    assert np.isfinite(values).all()


@pytest.mark.parametrize(
    ("layer", "kind", "field"), [(2, "hidden", "layer"), (-3, "hidden", "layer"), (0, "gate", "kind")]
)
def test_bad_layer_or_kind_names_its_field(loaded, layer, kind, field):
    model, tok, text = loaded
    with pytest.raises(CharRNNError) as e:
        activations(model, tok, text, layer=layer, kind=kind)
    assert e.value.fields == (field,)


def test_gru_has_hidden_only():
    model = CharRNN(ModelConfig(cell="gru", vocab_size=256, hidden_size=8, embed_size=4, layers=1)).eval()
    tok = ByteTokenizer()
    assert activations(model, tok, "hi", layer=0).values.shape == (2, 8)
    with pytest.raises(CharRNNError, match="kind"):
        activations(model, tok, "hi", layer=0, kind="cell")


@settings(max_examples=25, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12))
def test_byte_tokens_map_to_characters(text):
    model = CharRNN(ModelConfig(cell="rnn", vocab_size=256, hidden_size=8, embed_size=4, layers=1)).eval()
    result = score_text(model, ByteTokenizer(), text, top_k=2)
    assert "".join(t.text for t in result.tokens) == text
    assert len(result.tokens) == len(text.encode())
    starts = [t.start for t in result.tokens]
    assert starts == sorted(starts) and all(0 <= s < len(text) for s in starts)
    assert result.nats == pytest.approx(evaluate_text(model, ByteTokenizer(), ["\n" + text]).nats, rel=1e-4)
