from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from charrnn.config import CELLS, LSTM_CELLS, ModelConfig
from charrnn.errors import CharRNNError
from charrnn.model import HALF_CELLS, CharRNN, HalfStepper

from .skip_rule import machine_lacks


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_and_state_for_each_cell(cell):
    model = CharRNN(ModelConfig(vocab_size=30, cell=cell, hidden_size=24, embed_size=16, layers=3))
    logits, state = model(torch.randint(30, (5, 7)))
    assert logits.shape == (5, 7, 30)
    assert len(state) == (2 if cell in LSTM_CELLS else 1)
    assert all(s.shape == (3, 5, 24) for s in state)
    logits2, _ = model(torch.randint(30, (5, 7)), state)  # the state carries into the next call
    assert logits2.shape == (5, 7, 30)


@pytest.mark.parametrize("cell", CELLS)
def test_stepper_matches_the_sequence_kernel(cell):
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=20, cell=cell, hidden_size=32, embed_size=8, layers=2)).eval()
    ids = torch.randint(20, (3, 6))
    with torch.no_grad():
        full, final = model(ids[:, :4])
        rest, _ = model(ids[:, 4:], final)
    step = model.stepper()
    states = step.split(model.init_state(3))
    for t in range(4):
        logits, states = step(ids[:, t], states)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(states, step.split(final), atol=1e-5, rtol=1e-4)
    # A state from the sequence kernel carries on through the stepper.
    logits, _ = step(ids[:, 4], step.split(final))
    torch.testing.assert_close(logits, rest[:, 0], atol=1e-5, rtol=1e-4)


@pytest.mark.skipif(
    not HalfStepper.supports("gru", torch.device("cpu")),
    reason=machine_lacks("fbgemm fp16 kernels in this torch build"),
)
@pytest.mark.parametrize(("cell", "vocab"), [(cell, 20) for cell in HALF_CELLS] + [("gru", 1100)])
def test_half_stepper_computes_the_network_of_its_rounded_weights(cell, vocab):
    """The fp16 stepper's only difference from the fp32 one is rounding each weight to fp16
    (a subword-sized vocabulary's output layer too)."""
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=vocab, cell=cell, hidden_size=32, embed_size=8, layers=2)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
        if cell == "rnn-relu":  # IRNN's tiny input weights would leave the test blind to them
            for p in model.rnn.parameters():
                p.copy_(torch.randn_like(p).div(4).half().float())
    ids = torch.randint(vocab, (3, 6))
    half, exact = model.stepper("fp16"), model.stepper()
    assert isinstance(half, HalfStepper) and (half.head is not None) == (vocab > 1024)
    half_states = exact_states = exact.split(model.init_state(3))
    with torch.inference_mode():
        for t in range(6):
            half_logits, half_states = half(ids[:, t], half_states)
            exact_logits, exact_states = exact(ids[:, t], exact_states)
            torch.testing.assert_close(half_logits, exact_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(half_states, exact_states, atol=1e-5, rtol=1e-4)


def test_stepper_is_kept_until_the_weights_change():
    model = CharRNN(ModelConfig(vocab_size=20, hidden_size=16, embed_size=8)).eval()
    step = model.stepper()
    assert model.stepper() is step
    with torch.no_grad():
        model.head.bias.add_(1.0)
    fresh = model.stepper()
    assert fresh is not step
    logits, _ = fresh(torch.tensor([3]), fresh.split(model.init_state(1)))
    with torch.no_grad():
        torch.testing.assert_close(logits, model(torch.tensor([[3]]))[0][:, 0])


def test_irnn_starts_from_the_identity():
    model = CharRNN(ModelConfig(vocab_size=10, cell="rnn-relu", hidden_size=16, embed_size=8, layers=2))
    for k in range(2):
        assert torch.equal(getattr(model.rnn, f"weight_hh_l{k}"), torch.eye(16))
        assert not getattr(model.rnn, f"bias_hh_l{k}").any()


def test_forget_bias_and_tied_weights():
    model = CharRNN(ModelConfig(vocab_size=10, hidden_size=16, embed_size=16, forget_bias=1.0, tie_weights=True))
    bias = model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0
    assert torch.equal(bias[16:32], torch.ones(16))
    assert model.head.weight is model.embed.weight
    with pytest.raises(CharRNNError, match="tie_weights"):
        ModelConfig(vocab_size=10, hidden_size=16, embed_size=8, tie_weights=True)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_overfits_a_short_text(cell):
    torch.manual_seed(0)
    text = "the quick brown fox jumps over the lazy dog. " * 2
    chars = sorted(set(text))
    ids = torch.tensor([[chars.index(c) for c in text]])
    model = CharRNN(ModelConfig(vocab_size=len(chars), cell=cell, hidden_size=64, embed_size=16, layers=1, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        logits, _ = model(ids[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


@pytest.mark.parametrize("field", ["hidden_size", "layers", "embed_size"])
def test_sizes_must_be_positive(field):
    with pytest.raises(CharRNNError, match=field):  # the library names the field; the CLI shows its flag
        ModelConfig(vocab_size=10, **{field: 0})
