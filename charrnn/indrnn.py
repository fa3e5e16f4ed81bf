"""IndRNN: the independently recurrent network of Li, Li, Cook, Zhu & Gao (2018, "Independently
Recurrent Neural Network (IndRNN): Building A Longer and Deeper RNN", CVPR).

Per layer and step, with u a vector (one recurrent weight per unit, so units do not mix in time):

    h_t = relu(W x_t + u * h_{t-1} + b)

The gradient through T steps of one unit is a product of u and relu's 0/1 derivatives, so |u|
sets how fast it vanishes or explodes. Following the paper (Sec. 3.1) and its authors' code
(github.com/Sunnydreamrain/IndRNN_pytorch: U_bound = MAG^(1/seq_len), MAG = 2, the recurrent
weights drawn from uniform(0, U_bound) and clamped to [-U_bound, U_bound] after every update):

- u starts uniform in [0, 1), within the bound for every window T, so the build depends on the
  model config alone;
- `constrain(rnn, seq_len)`, called by the training loop after each optimizer step, clamps u
  to |u| <= 2^(1/T) with T the training window (--seq-len, saved in the checkpoint's train
  config, so a resumed run applies the same bound; sampling only reads the weights).

Speed (CPU training): the input projections of all steps are one matrix product; the elementwise
loop runs in TorchScript with a hand-written backward, so autograd records one node per layer
instead of several per step, and the gradient of u is one reduction over all steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from charrnn.cells import CellSpec, Scripted, layer_args

if TYPE_CHECKING:
    from charrnn.config import ModelConfig

MAG = 2.0  # the largest gain of the gradient through the whole window


def bound(seq_len: int) -> float:
    """The largest |u| for a BPTT window of seq_len steps: |u|^T <= MAG."""
    return MAG ** (1.0 / seq_len)


def forward_loop(xw: Tensor, h: Tensor, u: Tensor) -> Tensor:
    """xw (T, B, H): every step's W x + b. Returns every h (T, B, H)."""
    hs = torch.empty_like(xw)
    for t in range(xw.shape[0]):
        h = torch.relu(torch.addcmul(xw[t], u, h))
        hs[t] = h
    return hs


def backward_loop(d_hs: Tensor, hs: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """The pre-activation gradients of every step (T, B, H) and the gradient of h_0."""
    d_pre = torch.empty_like(hs)
    dh = torch.zeros_like(hs[0])
    for t in range(hs.shape[0] - 1, -1, -1):
        dh = (dh + d_hs[t]) * (hs[t] > 0).to(hs.dtype)
        d_pre[t] = dh
        dh = dh * u
    return d_pre, dh


LOOPS = (Scripted(forward_loop), Scripted(backward_loop))


class _Recurrence(torch.autograd.Function):
    """One layer's loop: every h from the input projections, h_0 and u."""

    @staticmethod
    def forward(ctx, xw, h0, u):
        hs = LOOPS[0](xw, h0, u)
        ctx.save_for_backward(h0, u, hs)
        return hs

    @staticmethod
    def backward(ctx, d_hs):
        h0, u, hs = ctx.saved_tensors
        d_pre, dh0 = LOOPS[1](d_hs.contiguous(), hs, u)
        h_prev = torch.cat([h0[None], hs[:-1]])
        return d_pre, dh0, (d_pre * h_prev).sum((0, 1))


recurrence = _Recurrence.apply


class IndRNN(nn.Module):
    """A multi-layer IndRNN, batch-first, called like nn.RNN. Parameters per layer k:
    weight_ih_l{k} (H, in), weight_hh_l{k} (H,): u, and bias_l{k} (H,)."""

    hand_written_loop = True  # torch.compile leaves it as it is (charrnn.model.compiled)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_size, self.num_layers, self.dropout = hidden_size, num_layers, dropout
        for k in range(num_layers):
            fan_in = input_size if k == 0 else hidden_size
            w = nn.init.uniform_(torch.empty(hidden_size, fan_in), -(fan_in**-0.5), fan_in**-0.5)
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(w))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.rand(hidden_size)))
            self.register_parameter(f"bias_l{k}", nn.Parameter(torch.zeros(hidden_size)))

    def layer(self, k: int) -> list[Tensor | None]:
        """Layer k's step weights: (weight_ih, u, bias, None)."""
        return [getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}"), getattr(self, f"bias_l{k}"), None]

    def forward(self, x: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (batch, time, input) -> every step's top-layer h (batch, time, H), and h_n (layers, batch, H)."""
        w = self.weight_hh_l0
        if hx is None:
            hx = w.new_zeros(self.num_layers, x.shape[0], self.hidden_size)
        last = []
        with torch.autocast(x.device.type, enabled=False):  # the recurrence runs in the weights' dtype
            inp = x.to(w.dtype).transpose(0, 1)
            for k in range(self.num_layers):
                if k and self.training and self.dropout:
                    inp = F.dropout(inp, self.dropout, True)
                w_ih, u, b, _ = self.layer(k)
                inp = recurrence(F.linear(inp, w_ih, b).contiguous(), hx[k].to(w.dtype), u)
                last.append(inp[-1])
        return inp.transpose(0, 1), torch.stack(last)


def step(x: Tensor, h: Tensor, w_ih: Tensor, u: Tensor, bias: Tensor, _unused: None = None) -> Tensor:
    """One step, torch.rnn_relu_cell's call; bias may be a (batch, H) table row."""
    return torch.relu(torch.addcmul(torch.addmm(bias, x, w_ih.t()), u, h))


def constrain(rnn: nn.Module, seq_len: int) -> None:
    """Clamp every layer's u to the paper's bound for the training window."""
    b = bound(seq_len)
    with torch.no_grad():
        for k in range(rnn.num_layers):
            getattr(rnn, f"weight_hh_l{k}").clamp_(-b, b)


def _build(cfg: ModelConfig) -> IndRNN:
    return IndRNN(**layer_args(cfg))


SPEC = CellSpec(build=_build, step=step, step_weights=lambda rnn, k: rnn.layer(k), constrain=constrain)
