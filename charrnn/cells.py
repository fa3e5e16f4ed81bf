"""LSTM variants that PyTorch does not ship: peephole connections and a coupled input-forget gate.

One multi-layer module, `LSTMVariant`, with nn.LSTM's call (batch_first) and state layout, so the
rest of charrnn treats it as an nn.LSTM. Per layer and step, with a = W_ih x + W_hh h + b:

    i   = sigmoid(a_i + p_i * c_{t-1})        CIFG: i = 1 - f, and no a_i, no p_i
    f   = sigmoid(a_f + p_f * c_{t-1})
    g   = tanh(a_g)
    c_t = f * c_{t-1} + i * g
    o   = sigmoid(a_o + p_o * c_t)            the output gate peeks at the new cell state
    h_t = o * tanh(c_t)

- `lstm-peephole` is Gers & Schmidhuber's (2000) LSTM with peepholes, the "vanilla" LSTM of
  Greff et al. (2015, "LSTM: A Search Space Odyssey").
- `lstm-cifg` is Greff et al.'s CIFG variant: that vanilla LSTM with i = 1 - f, keeping the
  forget and output peepholes, so it differs from `lstm-peephole` in the coupling alone.
- `peephole=False, coupled=False` is exactly nn.LSTM (a test checks outputs and gradients).

Speed (CPU training): the input projection W_ih x + b of all steps is one matrix product before
the loop. The loop, forward and backward, is written out by hand in TorchScript: per step only
h @ W_hh^T and the gate arithmetic, and the backward pass gives every step's gate gradients at
once, so the gradient of W_hh is one large matrix product over all steps after the loop instead
of a small one per step, several times faster than autograd through the same loop, scripted,
eager or with torch.compile (bench/cell_loop.py, bench/results/cell_loop.json).

This module also holds the cell registry's torch half: a `CellSpec` per cell (the light half,
names and help, is charrnn/registry.py).
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from charrnn.config import ModelConfig

log = logging.getLogger("charrnn")


def step_equations(a: Tensor, c: Tensor, peep: Tensor | None, coupled: bool) -> tuple[Tensor, Tensor, Tensor]:
    """One step from the gate pre-activations a (batch, gates*H) and c_{t-1}.

    Returns h_t, c_t and the activated gates (i, f, g, o; CIFG: f, g, o) side by side, which the
    backward pass needs. `peep` rows are (p_i, p_f, p_o), or (p_f, p_o) when coupled.
    """
    n = c.shape[1]
    if coupled:
        f_pre, g_pre, o_pre = a[:, :n], a[:, n : 2 * n], a[:, 2 * n :]
        i_pre = f_pre  # unused
    else:
        i_pre, f_pre, g_pre, o_pre = a[:, :n], a[:, n : 2 * n], a[:, 2 * n : 3 * n], a[:, 3 * n :]
    if peep is not None:
        f_pre = torch.addcmul(f_pre, peep[-2], c)
        if not coupled:
            i_pre = torch.addcmul(i_pre, peep[0], c)
    f = torch.sigmoid(f_pre)
    i = 1.0 - f if coupled else torch.sigmoid(i_pre)
    g = torch.tanh(g_pre)
    c_new = torch.addcmul(f * c, i, g)
    if peep is not None:
        o_pre = torch.addcmul(o_pre, peep[-1], c_new)
    o = torch.sigmoid(o_pre)
    h = o * torch.tanh(c_new)
    acts = torch.cat([f, g, o], 1) if coupled else torch.cat([i, f, g, o], 1)
    return h, c_new, acts


def forward_loop(
    xw: Tensor, h: Tensor, c: Tensor, w_hh_t: Tensor, peep: Tensor | None, coupled: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """xw (T, B, gates*H): the input projections. Returns every h (T, B, H), every c with c_0
    first (T+1, B, H) and every step's activated gates (T, B, gates*H)."""
    steps = xw.shape[0]
    hs = xw.new_empty(steps, h.shape[0], h.shape[1])
    cs = xw.new_empty(steps + 1, c.shape[0], c.shape[1])
    acts = torch.empty_like(xw)
    cs[0] = c
    for t in range(steps):
        h, c, act = step_equations(torch.addmm(xw[t], h, w_hh_t), c, peep, coupled)
        hs[t] = h
        cs[t + 1] = c
        acts[t] = act
    return hs, cs, acts


def backward_loop(
    d_hs: Tensor, dh: Tensor, dc: Tensor, acts: Tensor, cs: Tensor, w_hh: Tensor, peep: Tensor | None, coupled: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Back through time: the gate pre-activation gradients of every step (T, B, gates*H),
    and the gradients of h_0 and c_0."""
    n = dh.shape[1]
    d_gates = torch.empty_like(acts)
    for t in range(acts.shape[0] - 1, -1, -1):
        dh = dh + d_hs[t]
        act, c_prev, c = acts[t], cs[t], cs[t + 1]
        if coupled:
            f, g, o = act[:, :n], act[:, n : 2 * n], act[:, 2 * n :]
            i = 1.0 - f
        else:
            i, f, g, o = act[:, :n], act[:, n : 2 * n], act[:, 2 * n : 3 * n], act[:, 3 * n :]
        tanh_c = torch.tanh(c)
        d_o = dh * tanh_c * o * (1.0 - o)
        dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
        if peep is not None:
            dc = torch.addcmul(dc, d_o, peep[-1])
        d_g = dc * i * (1.0 - g * g)
        sig_f = f * (1.0 - f)
        if coupled:
            d_f = dc * (c_prev - g) * sig_f  # c_t = f c_{t-1} + (1 - f) g
            d_gates[t] = torch.cat([d_f, d_g, d_o], 1)
            dc = dc * f
        else:
            d_f = dc * c_prev * sig_f
            d_i = dc * g * i * (1.0 - i)
            d_gates[t] = torch.cat([d_i, d_f, d_g, d_o], 1)
            dc = dc * f
            if peep is not None:
                dc = torch.addcmul(dc, d_i, peep[0])
        if peep is not None:
            dc = torch.addcmul(dc, d_f, peep[-2])
        dh = torch.mm(d_gates[t], w_hh)
    return d_gates, dh, dc


class Scripted:
    """`fn` compiled by TorchScript at its first call, not at import: scripting every loop when the
    module loads would slow the start-up of every command, sampling from an nn.LSTM included.

    TorchScript runs the loops without Python's per-op overhead, which matters at small sizes
    (at large ones the matrix products dominate). torch.compile would unroll the loops and
    recompile them for every sequence length (bench/cell_loop.py).
    torch 2.13 deprecates TorchScript and warns; where it is gone, the loops run eager."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.compiled: Callable | None = None

    def __call__(self, *args):
        if self.compiled is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    self.compiled = torch.jit.script(self.fn)
                except Exception as e:  # a Python or torch without TorchScript
                    log.debug("TorchScript unavailable (%s); %s runs eager", e, self.fn.__name__)
                    self.compiled = self.fn
        return self.compiled(*args)


cell_step = Scripted(step_equations)
LOOPS = (Scripted(forward_loop), Scripted(backward_loop))  # bench/cell_loop.py swaps in the alternatives


class _Recurrence(torch.autograd.Function):
    """One layer's loop with a hand-written backward; returns every h and the last c."""

    @staticmethod
    def forward(ctx, xw, h0, c0, w_hh, peep, coupled):
        hs, cs, acts = LOOPS[0](xw, h0, c0, w_hh.t(), peep, coupled)
        ctx.coupled = coupled
        ctx.save_for_backward(h0, w_hh, peep, hs, cs, acts)
        return hs, cs[-1]

    @staticmethod
    def backward(ctx, d_hs, d_c_last):
        h0, w_hh, peep, hs, cs, acts = ctx.saved_tensors
        d_gates, dh0, dc0 = LOOPS[1](d_hs, torch.zeros_like(h0), d_c_last, acts, cs, w_hh, peep, ctx.coupled)
        steps, batch, n = hs.shape
        h_prev = torch.cat([h0[None], hs[:-1]]).view(steps * batch, n)
        d_w_hh = d_gates.view(steps * batch, -1).t() @ h_prev  # all steps in one product
        d_peep = None
        if peep is not None:
            # Rows (p_i,) p_f read c_{t-1}, and their gates come first; p_o reads c_t.
            rows = [(d_gates[..., k * n : (k + 1) * n] * cs[:-1]).sum((0, 1)) for k in range(2 - ctx.coupled)]
            d_peep = torch.stack([*rows, (d_gates[..., -n:] * cs[1:]).sum((0, 1))])
        return d_gates, dh0, dc0, d_w_hh, d_peep, None


class LSTMVariant(nn.Module):
    """A multi-layer LSTM with optional peepholes and a coupled input-forget gate.

    Parameters per layer k: weight_ih_l{k} and weight_hh_l{k} (gates*H rows, gate order i, f, g, o
    as in nn.LSTM, or f, g, o when coupled), one bias_l{k}, and peephole_l{k} (rows p_i, p_f, p_o,
    or p_f, p_o when coupled). Initialized like nn.LSTM: uniform in +-1/sqrt(H).
    """

    hand_written_loop = True  # torch.compile leaves it as it is (charrnn.model.compiled)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        peephole: bool = True,
        coupled: bool = False,
    ) -> None:
        super().__init__()
        self.hidden_size, self.num_layers, self.dropout = hidden_size, num_layers, dropout
        self.peephole, self.coupled = peephole, coupled
        gates = (3 if coupled else 4) * hidden_size
        for k in range(num_layers):
            self.register_parameter(
                f"weight_ih_l{k}", nn.Parameter(torch.empty(gates, input_size if k == 0 else hidden_size))
            )
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(gates, hidden_size)))
            self.register_parameter(f"bias_l{k}", nn.Parameter(torch.empty(gates)))
            if peephole:
                self.register_parameter(f"peephole_l{k}", nn.Parameter(torch.empty(2 if coupled else 3, hidden_size)))
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer(self, k: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Layer k's (weight_ih, weight_hh, bias, peephole or None)."""
        return (
            getattr(self, f"weight_ih_l{k}"),
            getattr(self, f"weight_hh_l{k}"),
            getattr(self, f"bias_l{k}"),
            getattr(self, f"peephole_l{k}") if self.peephole else None,
        )

    def forget_slice(self) -> slice:
        """Where the forget gate sits in the gate rows."""
        n = self.hidden_size
        return slice(0, n) if self.coupled else slice(n, 2 * n)

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (batch, time, input) -> every step's top-layer h (batch, time, H), and (h_n, c_n)."""
        w = self.weight_hh_l0
        if hx is None:
            zeros = w.new_zeros(self.num_layers, x.shape[0], self.hidden_size)
            hx = (zeros, zeros)
        hs, cs = [], []
        # Autocast off: the recurrence runs in the weights' dtype (fp32, or fp64 for gradflow).
        with torch.autocast(x.device.type, enabled=False):
            inp = x.to(w.dtype).transpose(0, 1)  # time-major, so each step's slice is contiguous
            for k in range(self.num_layers):
                if k and self.training and self.dropout:
                    inp = F.dropout(inp, self.dropout, True)
                w_ih, w_hh, b, peep = self.layer(k)
                xw = F.linear(inp, w_ih, b).contiguous()  # every step's input projection at once
                inp, c = _Recurrence.apply(xw, hx[0][k].to(w.dtype), hx[1][k].to(w.dtype), w_hh, peep, self.coupled)
                hs.append(inp[-1])
                cs.append(c)
        return inp.transpose(0, 1), (torch.stack(hs), torch.stack(cs))


def _variant_cell(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    w_ih: Tensor,
    w_hh: Tensor,
    bias: Tensor,
    peep: Tensor | None,
    coupled: bool,
) -> tuple[Tensor, Tensor]:
    """torch.lstm_cell's call for the LSTMVariant cells; bias may be a (batch, gates) table row."""
    h, c, _ = cell_step(torch.addmm(torch.addmm(bias, x, w_ih.t()), state[0], w_hh.t()), state[1], peep, coupled)
    return h, c


# --- the cell registry's torch half -------------------------------------------------------------


def _no_init(rnn: nn.Module, cfg: ModelConfig) -> None:
    """Keep the module's own initialization."""


def _no_constrain(rnn: nn.Module, seq_len: int) -> None:
    """No bound on the weights."""


@dataclass(frozen=True)
class CellSpec:
    """How charrnn builds, initializes and steps one cell.

    build(cfg) -> the multi-layer module: batch-first, called as (x, hx) with hx (h, c) for a cell
    with a cell state (registry.CellInfo.cell_state), else h; each (layers, batch, hidden).
    step(x, state, *step_weights(rnn, k)) -> h, or (h, c): one step of layer k, torch.lstm_cell's
    call. Of the four step weights, [0] multiplies the input and [2] is a bias added to that
    product (the Stepper folds both into a table for the first layer); the others are the cell's own.
    half_kernel: torch.ops.quantized's fp16 single-step kernel, called like `step`, or None.
    constrain(rnn, seq_len): after each optimizer step, keeps the weights in the cell's bounds.
    """

    build: Callable[[ModelConfig], nn.Module]
    step: Callable[..., Tensor | tuple[Tensor, Tensor]]
    step_weights: Callable[[nn.Module, int], list[Tensor | None]]
    init: Callable[[nn.Module, ModelConfig], None] = _no_init
    half_kernel: str | None = None
    constrain: Callable[[nn.Module, int], None] = _no_constrain


def layer_args(cfg: ModelConfig) -> dict:
    """The multi-layer module's size arguments, shared by every cell."""
    return dict(
        input_size=cfg.embed_size,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.layers,
        dropout=cfg.dropout if cfg.layers > 1 else 0.0,
    )


def _torch_weights(rnn: nn.Module, k: int) -> list[Tensor | None]:
    return [getattr(rnn, f"{name}_l{k}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _torch_cell(module: type, step: Callable, half: str, init: Callable = _no_init, **kwargs) -> CellSpec:
    return CellSpec(
        build=lambda cfg: module(**layer_args(cfg), batch_first=True, **kwargs),
        step=step,
        step_weights=_torch_weights,
        init=init,
        half_kernel=half,
    )


def _lstm_init(rnn: nn.Module, cfg: ModelConfig) -> None:
    """--forget-bias: PyTorch's gate order is input, forget, cell, output; it sums two biases."""
    h = cfg.hidden_size
    if cfg.forget_bias:
        with torch.no_grad():
            for k in range(cfg.layers):
                getattr(rnn, f"bias_ih_l{k}")[h : 2 * h].fill_(cfg.forget_bias)
                getattr(rnn, f"bias_hh_l{k}")[h : 2 * h].zero_()


def _irnn_init(rnn: nn.Module, cfg: ModelConfig) -> None:
    """IRNN (Le, Jaitly & Hinton 2015): identity recurrence and zero biases."""
    with torch.no_grad():
        for k in range(cfg.layers):
            getattr(rnn, f"weight_hh_l{k}").copy_(torch.eye(cfg.hidden_size))
            getattr(rnn, f"bias_hh_l{k}").zero_()
            getattr(rnn, f"bias_ih_l{k}").zero_()
            nn.init.normal_(getattr(rnn, f"weight_ih_l{k}"), std=0.001 if k else 0.01)


def _variant_init(rnn: nn.Module, cfg: ModelConfig) -> None:
    if cfg.forget_bias:
        with torch.no_grad():
            for k in range(cfg.layers):
                rnn.layer(k)[2][rnn.forget_slice()].fill_(cfg.forget_bias)


def _variant(peephole: bool, coupled: bool) -> CellSpec:
    return CellSpec(
        build=lambda cfg: LSTMVariant(**layer_args(cfg), peephole=peephole, coupled=coupled),
        step=functools.partial(_variant_cell, coupled=coupled),
        step_weights=lambda rnn, k: list(rnn.layer(k)),  # its one bias, then the peepholes or None
        init=_variant_init,
    )


LSTM = _torch_cell(nn.LSTM, torch.lstm_cell, "quantized_lstm_cell_dynamic", _lstm_init)
GRU = _torch_cell(nn.GRU, torch.gru_cell, "quantized_gru_cell_dynamic")
RNN_TANH = _torch_cell(nn.RNN, torch.rnn_tanh_cell, "quantized_rnn_tanh_cell_dynamic", nonlinearity="tanh")
RNN_RELU = _torch_cell(nn.RNN, torch.rnn_relu_cell, "quantized_rnn_relu_cell_dynamic", _irnn_init, nonlinearity="relu")
PEEPHOLE = _variant(peephole=True, coupled=False)
CIFG = _variant(peephole=True, coupled=True)
