"""IndRNN (charrnn/indrnn.py): the layer against the paper's equation in a plain loop, the
hand-written backward by gradcheck, the |u| bound during training, and the whole CLI on real text."""

from __future__ import annotations

import pytest
import torch

from charrnn import checkpoint, trainer
from charrnn.config import DataConfig, ModelConfig, SampleConfig, TrainConfig
from charrnn.errors import CharRNNError
from charrnn.indrnn import IndRNN, bound, recurrence
from charrnn.model import CharRNN, HalfStepper
from charrnn.sample import generate

from .conftest import charrnn, charrnn_here, every_command, train_in_one_and_two_processes


def _naive(layer: IndRNN, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """h_t = relu(W x_t + u * h_{t-1} + b), one step and one layer at a time."""
    inp, last = x, []
    for k in range(layer.num_layers):
        w, u, b, _ = layer.layer(k)
        h, outs = h0[k], []
        for t in range(x.shape[1]):
            h = torch.relu(inp[:, t] @ w.t() + u * h + b)
            outs.append(h)
        inp = torch.stack(outs, 1)
        last.append(h)
    return inp, torch.stack(last)


def test_the_layer_is_the_equation():
    torch.manual_seed(0)
    layer = IndRNN(5, 7, num_layers=2)
    x, h0 = torch.randn(3, 6, 5), torch.rand(2, 3, 7)
    out, h = layer(x, h0)
    ref_out, ref_h = _naive(layer, x, h0)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h, ref_h)


def test_gradients_match_autograd_through_the_loop():
    torch.manual_seed(1)
    layer = IndRNN(4, 6, num_layers=2)
    x, h0 = torch.randn(2, 9, 4), torch.rand(2, 2, 6)
    weight, params = torch.randn(2, 9, 6), list(layer.parameters())

    def loss(out_and_h):
        return (out_and_h[0] * weight).sum() + out_and_h[1].sum()

    ours = torch.autograd.grad(loss(layer(x, h0)), params)
    ref = torch.autograd.grad(loss(_naive(layer, x, h0)), params)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_gradcheck_of_the_hand_written_backward():
    torch.manual_seed(2)
    xw = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    u = torch.rand(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(recurrence, (xw, h0, u))


def test_initial_u_lies_within_every_bound():
    u = IndRNN(3, 500).weight_hh_l0
    assert u.shape == (500,) and u.min() >= 0 and u.max() < 1 <= bound(10_000)
    assert bound(1) == 2.0 and abs(bound(100) ** 100 - 2.0) < 1e-9


def test_the_bound_holds_after_training_steps(tmp_path, corpus_file):
    """Weights pushed past the bound (here by hand, in the checkpoint) come back within it after
    the next optimizer step, in a resumed run too."""
    data = DataConfig(sources=[str(corpus_file)], cache_dir=str(tmp_path / "cache"))
    model = {"cell": "indrnn", "hidden_size": 32, "embed_size": 16, "layers": 2, "dropout": 0.0}
    cfg = TrainConfig(batch_size=8, seq_len=4, max_steps=2, eval_every=100, warmup_steps=0, precision="fp32")
    trainer.train(data, model, cfg, out=str(tmp_path / "run"))
    path = tmp_path / "run" / "last.pt"
    saved = torch.load(path, weights_only=True)
    for k in range(2):
        assert saved["model"][f"rnn.weight_hh_l{k}"].abs().max() <= bound(4)
        saved["model"][f"rnn.weight_hh_l{k}"][:3] = torch.tensor([3.0, -3.0, 0.5])
    torch.save(saved, path)
    trainer.resume(str(tmp_path / "run"), {"max_steps": 3})
    for k in range(2):
        u = checkpoint.load(path).model[f"rnn.weight_hh_l{k}"]
        assert u.abs().max() <= bound(4) and u[0] == pytest.approx(bound(4)) and u[1] == pytest.approx(-bound(4))


def test_resume_is_bit_identical(tmp_path, corpus_file):
    data = DataConfig(sources=[str(corpus_file)], cache_dir=str(tmp_path / "cache"))
    model = {"cell": "indrnn", "hidden_size": 32, "embed_size": 16, "layers": 2, "dropout": 0.2}
    base = dict(batch_size=8, seq_len=16, eval_every=5, warmup_steps=3, min_lr_frac=1.0, seed=3, precision="fp32")
    trainer.train(data, model, TrainConfig(**base, max_steps=14), out=str(tmp_path / "whole"))
    trainer.train(data, model, TrainConfig(**base, max_steps=8), out=str(tmp_path / "split"))
    trainer.resume(str(tmp_path / "split"), {"max_steps": 14})
    a = checkpoint.load(tmp_path / "whole" / "last.pt").model
    b = checkpoint.load(tmp_path / "split" / "last.pt").model
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stepper_matches_the_sequence_forward_and_has_no_fp16_kernel():
    model = CharRNN(ModelConfig(vocab_size=20, cell="indrnn", hidden_size=16, embed_size=8, layers=2)).eval()
    ids = torch.randint(20, (3, 7))
    logits, _ = model(ids)
    stepper = model.stepper()
    states = stepper.split(model.init_state(3))
    for t in range(7):
        step_logits, states = stepper(ids[:, t], states)
    torch.testing.assert_close(step_logits, logits[:, -1])
    assert not HalfStepper.supports("indrnn", torch.device("cpu"))


def _train_args(tmp_path) -> list[str]:
    args = ["--model", "indrnn", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--dropout", "0"]
    args += "--hidden-size 48 --embed-size 16 --batch-size 8 --seq-len 32 --lr 1e-2 --seed 3 --precision fp32".split()
    return args + "--max-steps 40 --eval-every 20 --log-every 10 --warmup-steps 5".split()


@pytest.mark.slow
def test_train_resume_sample_eval_gradflow_info(tmp_path, short_corpus_file):
    """The real commands on real text."""
    run = every_command(_train_args(tmp_path), short_corpus_file, tmp_path)
    refused = charrnn_here("sample", "-c", run, "--length", "5", "--precision", "fp16", cwd=tmp_path)
    assert refused.returncode != 0 and "--precision fp16" in refused.stderr and "Traceback" not in refused.stderr
    info = charrnn_here("info", run, cwd=tmp_path)
    assert info.returncode == 0 and "indrnn" in info.stdout and "forget" not in info.stdout, info.stderr


@pytest.mark.slow
def test_gradflow_compares_indrnn_with_other_cells(tmp_path, corpus_file):
    out = tmp_path / "flow.png"
    flow = charrnn(
        "gradflow", "--compare", "--corpus", str(corpus_file), "--cells", "indrnn,rnn-relu", "--budget", "1s",
        "--seq-len", "16", "--batches", "1", "--batch-size", "4", "--hidden-size", "32", "-o", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert flow.returncode == 0, flow.stderr
    assert "indrnn" in flow.stdout and "rnn-relu" in flow.stdout


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, short_corpus_file):
    train_in_one_and_two_processes(tmp_path, [str(short_corpus_file), *_train_args(tmp_path)])


def test_sampling_auto_precision_falls_back_to_fp32():
    from charrnn.tokenizers import ByteTokenizer

    tok = ByteTokenizer()
    model = CharRNN(ModelConfig(vocab_size=tok.vocab_size, cell="indrnn", hidden_size=8))
    assert generate(model, tok, SampleConfig(length=5))[0].settings["precision"] == "fp32"
    with pytest.raises(CharRNNError, match="precision fp16 needs the CPU"):
        generate(model, tok, SampleConfig(length=5, precision="fp16"))
