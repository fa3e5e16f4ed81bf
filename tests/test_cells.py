"""The LSTM variants (charrnn/cells.py): equal to nn.LSTM where they should be, the peephole and
coupling equations by hand, the hand-written backward pass, and the whole CLI on real text."""

from __future__ import annotations

import math

import pytest
import torch

from charrnn.cells import LSTMVariant
from charrnn.config import ModelConfig
from charrnn.model import CharRNN

from .conftest import every_command, train_in_one_and_two_processes


def _from_nn_lstm(lstm: torch.nn.LSTM) -> LSTMVariant:
    """An uncoupled, peephole-free LSTMVariant holding nn.LSTM's weights (its two biases summed)."""
    cell = LSTMVariant(lstm.input_size, lstm.hidden_size, lstm.num_layers, peephole=False, coupled=False)
    with torch.no_grad():
        for k in range(lstm.num_layers):
            w_ih, w_hh, b, peep = cell.layer(k)
            assert peep is None
            w_ih.copy_(getattr(lstm, f"weight_ih_l{k}"))
            w_hh.copy_(getattr(lstm, f"weight_hh_l{k}"))
            b.copy_(getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}"))
    return cell


def _outputs_and_grads(module, x, h0, c0):
    """Outputs, final states and the gradients of a loss that reaches all three."""
    inputs = [t.clone().requires_grad_() for t in (x, h0, c0)]
    out, (h, c) = module(inputs[0], (inputs[1], inputs[2]))
    gen = torch.Generator().manual_seed(1)
    loss = sum((t * torch.randn(t.shape, generator=gen)).sum() for t in (out, h, c))
    loss.backward()
    return (out, h, c), [t.grad for t in inputs]


def test_without_peepholes_and_coupling_it_is_nn_lstm():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 7, num_layers=2, batch_first=True)
    cell = _from_nn_lstm(lstm)
    x, h0, c0 = torch.randn(3, 6, 5), torch.randn(2, 3, 7), torch.randn(2, 3, 7)
    ours, our_input_grads = _outputs_and_grads(cell, x, h0, c0)
    ref, ref_input_grads = _outputs_and_grads(lstm, x, h0, c0)
    for a, b in zip([*ours, *our_input_grads], [*ref, *ref_input_grads], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    for k in range(2):
        w_ih, w_hh, b, _ = cell.layer(k)
        torch.testing.assert_close(w_ih.grad, getattr(lstm, f"weight_ih_l{k}").grad, atol=1e-5, rtol=0)
        torch.testing.assert_close(w_hh.grad, getattr(lstm, f"weight_hh_l{k}").grad, atol=1e-5, rtol=0)
        torch.testing.assert_close(b.grad, getattr(lstm, f"bias_ih_l{k}").grad, atol=1e-5, rtol=0)


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


@pytest.mark.parametrize("coupled", [False, True])
def test_one_step_by_hand(coupled):
    """One unit, one input, one step, every weight set by hand; the equations of Gers &
    Schmidhuber (peepholes, the output gate reading the new cell state) and of CIFG (i = 1 - f)."""
    cell = LSTMVariant(1, 1, peephole=True, coupled=coupled)
    x, h0, c0 = 0.5, -0.3, 0.8
    w_ih = {"i": 0.4, "f": -0.7, "g": 1.1, "o": 0.3}
    w_hh = {"i": -0.2, "f": 0.5, "g": 0.6, "o": -0.9}
    b = {"i": 0.1, "f": 1.0, "g": -0.2, "o": 0.05}
    p = {"i": 0.25, "f": -0.35, "o": 0.45}
    gates, peeps = ("fgo", "fo") if coupled else ("ifgo", "ifo")
    with torch.no_grad():
        weight_ih, weight_hh, bias, peep = cell.layer(0)
        weight_ih.copy_(torch.tensor([[w_ih[g]] for g in gates]))
        weight_hh.copy_(torch.tensor([[w_hh[g]] for g in gates]))
        bias.copy_(torch.tensor([b[g] for g in gates]))
        peep.copy_(torch.tensor([[p[g]] for g in peeps]))
    out, (h, c) = cell(torch.tensor([[[x]]]), (torch.tensor([[[h0]]]), torch.tensor([[[c0]]])))

    a = {g: w_ih[g] * x + w_hh[g] * h0 + b[g] for g in "ifgo"}
    f = _sigmoid(a["f"] + p["f"] * c0)
    i = 1 - f if coupled else _sigmoid(a["i"] + p["i"] * c0)
    c_new = f * c0 + i * math.tanh(a["g"])
    o = _sigmoid(a["o"] + p["o"] * c_new)  # the output gate peeks at the new cell state
    h_new = o * math.tanh(c_new)
    assert c.item() == pytest.approx(c_new, abs=1e-6)
    assert h.item() == pytest.approx(h_new, abs=1e-6) and out.item() == pytest.approx(h_new, abs=1e-6)


@pytest.mark.parametrize(("peephole", "coupled"), [(True, False), (True, True), (False, True)])
def test_hand_written_backward_matches_finite_differences(peephole, coupled):
    torch.manual_seed(0)
    cell = LSTMVariant(3, 4, num_layers=2, peephole=peephole, coupled=coupled).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(3)  # larger weights than at initialization, so that every term matters
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    h0, c0 = (torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True) for _ in range(2))
    names = [name for name, _ in cell.named_parameters()]

    def run(x, h0, c0, *weights):
        out, (h, c) = torch.func.functional_call(cell, dict(zip(names, weights, strict=True)), (x, (h0, c0)))
        return out, h, c

    assert torch.autograd.gradcheck(run, (x, h0, c0, *[p.detach().clone().requires_grad_() for p in cell.parameters()]))


def test_layers_dropout_and_forget_bias():
    model = CharRNN(ModelConfig(vocab_size=20, cell="lstm-cifg", hidden_size=16, embed_size=8, layers=3, dropout=0.5))
    assert model.rnn.num_layers == 3 and model.rnn.weight_ih_l0.shape == (48, 8)  # f, g, o
    assert model.rnn.peephole_l2.shape == (2, 16)  # p_f, p_o
    ids = torch.randint(20, (4, 9))
    (a, _), (b, _) = model(ids), model(ids)
    assert not torch.equal(a, b)  # dropout between layers and before the head, in training
    model.eval()
    (a, state), (b, _) = model(ids), model(ids)
    assert torch.equal(a, b) and [s.shape for s in state] == [(3, 4, 16)] * 2

    peephole = CharRNN(ModelConfig(vocab_size=20, cell="lstm-peephole", hidden_size=16, embed_size=8, forget_bias=1.0))
    assert torch.equal(peephole.rnn.bias_l1[16:32], torch.ones(16))  # i, f, g, o: the forget gate is second
    assert peephole.rnn.peephole_l0.shape == (3, 16)


def _train_args(cell: str, tmp_path) -> list[str]:
    args = ["--model", cell, "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--dropout", "0"]
    args += "--hidden-size 48 --embed-size 16 --batch-size 8 --seq-len 32 --lr 1e-2 --seed 3".split()
    return args + "--max-steps 40 --eval-every 20 --log-every 10 --warmup-steps 5".split()


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm-peephole", "lstm-cifg"])
def test_train_resume_sample_eval_gradflow(cell, tmp_path, short_corpus_file):
    """The real commands on real text, and the weights-only checkpoint."""
    every_command(_train_args(cell, tmp_path), short_corpus_file, tmp_path)
    assert "rnn.peephole_l1" in torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, short_corpus_file):
    train_in_one_and_two_processes(tmp_path, [str(short_corpus_file), *_train_args("lstm-cifg", tmp_path)])
