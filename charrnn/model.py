"""The network: embedding -> stacked recurrent layers -> dropout -> linear over the vocabulary."""

from __future__ import annotations

import functools

import torch
from torch import nn

from charrnn.cells import CELL_VARIANTS, LSTMVariant, cell_step
from charrnn.config import LSTM_CELLS, ModelConfig
from charrnn.errors import CharRNNError

# The recurrent state: (h, c) for the LSTM cells, (h,) for the others; each tensor (layers, batch, hidden).
State = tuple[torch.Tensor, ...]


class CharRNN(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_size)
        rnn_args = dict(
            input_size=cfg.embed_size,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.layers,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            batch_first=True,
        )
        if cfg.cell == "lstm":
            self.rnn = nn.LSTM(**rnn_args)
        elif cfg.cell in CELL_VARIANTS:
            del rnn_args["batch_first"]  # LSTMVariant is always batch-first
            self.rnn = LSTMVariant(**rnn_args, **CELL_VARIANTS[cfg.cell])
        elif cfg.cell == "gru":
            self.rnn = nn.GRU(**rnn_args)
        else:
            self.rnn = nn.RNN(nonlinearity="relu" if cfg.cell == "rnn-relu" else "tanh", **rnn_args)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight
        self._init_weights()
        self._stepper: tuple[tuple, Stepper | HalfStepper] | None = None  # see stepper()

    def _init_weights(self) -> None:
        cfg = self.cfg
        nn.init.normal_(self.embed.weight, std=0.1 if not cfg.tie_weights else cfg.hidden_size**-0.5)
        if isinstance(self.rnn, LSTMVariant):
            if cfg.forget_bias:
                with torch.no_grad():
                    for layer in range(cfg.layers):
                        self.rnn.layer(layer)[2][self.rnn.forget_slice()].fill_(cfg.forget_bias)
            return
        for layer in range(cfg.layers):
            w_hh = getattr(self.rnn, f"weight_hh_l{layer}")
            if cfg.cell == "rnn-relu":
                # IRNN (Le, Jaitly & Hinton 2015): identity recurrence and zero biases.
                with torch.no_grad():
                    w_hh.copy_(torch.eye(cfg.hidden_size))
                    getattr(self.rnn, f"bias_hh_l{layer}").zero_()
                    getattr(self.rnn, f"bias_ih_l{layer}").zero_()
                    w_ih = getattr(self.rnn, f"weight_ih_l{layer}")
                    nn.init.normal_(w_ih, std=0.001 if layer else 0.01)
            if cfg.cell == "lstm" and cfg.forget_bias:
                h = cfg.hidden_size  # gate order in PyTorch: input, forget, cell, output
                with torch.no_grad():
                    getattr(self.rnn, f"bias_ih_l{layer}")[h : 2 * h].fill_(cfg.forget_bias)
                    getattr(self.rnn, f"bias_hh_l{layer}")[h : 2 * h].zero_()

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        cfg = self.cfg
        device = device or self.head.weight.device
        zeros = torch.zeros(cfg.layers, batch_size, cfg.hidden_size, device=device)
        return (zeros, zeros.clone()) if cfg.cell in LSTM_CELLS else (zeros,)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids (batch, time) -> logits (batch, time, vocab) and the state after the last step."""
        x = self.embed(ids)
        if state is None:
            out, new = self.rnn(x)
        else:
            out, new = self.rnn(x, state if self.cfg.cell in LSTM_CELLS else state[0])
        new = tuple(new) if isinstance(new, tuple) else (new,)
        return self.head(self.drop(out)), new

    def stepper(self, precision: str = "fp32") -> Stepper | HalfStepper:
        """A fast one-token-at-a-time view of this network for generation (see Stepper);
        precision "fp16" stores its weights as fp16 (CPU only, see HalfStepper).

        Kept until the weights change or move, so repeated generation from one model does not
        pay for building it again (packing the fp16 weights takes about 35 ms at 2x512)."""
        key = (precision, self.head.weight.device, tuple(p._version for p in self.parameters()))
        if self._stepper is None or self._stepper[0] != key:
            self._stepper = (key, HalfStepper(self) if precision == "fp16" else Stepper(self))
        return self._stepper[1]


_CELL_KERNELS = {
    "lstm": torch.lstm_cell,
    "gru": torch.gru_cell,
    "rnn": torch.rnn_tanh_cell,
    "rnn-relu": torch.rnn_relu_cell,
}


def _variant_cell(
    x: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    bias: torch.Tensor,
    peep: torch.Tensor | None,
    coupled: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.lstm_cell's call for the LSTMVariant cells; bias may be a (batch, gates) table row."""
    h, c, _ = cell_step(torch.addmm(torch.addmm(bias, x, w_ih.t()), state[0], w_hh.t()), state[1], peep, coupled)
    return h, c


_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class Stepper:
    """Advances the network one token at a time, with as little work per step as eager PyTorch allows.

    - Fused single-step cell kernels (torch.lstm_cell, gru_cell, ...): at batch 1 on CPU they run
      several times faster than nn.LSTM's sequence kernel (measured 1.65 vs 7.4 ms per step at 2x512).
    - On the CPU the first layer's input projection, embedding @ W_ih^T + b_ih, is a (vocab, gates)
      table made once: a row lookup replaces a matmul per step. The cell takes the row as its input
      bias, with a zero-width input. (CUDA's fused cell kernels want 1-D biases, so not there.)
    - The state is a flat list of (batch, hidden) tensors, h of every layer, then c of every layer
      for an LSTM: nothing is stacked or split per step.
    - The LSTM variants (charrnn/cells.py) step through their own TorchScript cell, with the same
      first-layer table.

    Weights are read when the stepper is made; dropout is off, as in eval mode.
    """

    def __init__(self, model: CharRNN) -> None:
        cfg, rnn = model.cfg, model.rnn
        self.layers, self.lstm = cfg.layers, cfg.cell in LSTM_CELLS
        if isinstance(rnn, LSTMVariant):
            # Its one bias and its peepholes (or None) take the places of bias_ih and bias_hh.
            self.cell = functools.partial(_variant_cell, coupled=rnn.coupled)
            self.weights = [[None if t is None else t.detach() for t in rnn.layer(k)] for k in range(cfg.layers)]
        else:
            self.cell = _CELL_KERNELS[cfg.cell]
            self.weights = [[getattr(rnn, f"{n}_l{k}").detach() for n in _WEIGHT_NAMES] for k in range(cfg.layers)]
        self.embed = model.embed.weight.detach()
        self.head_weight, self.head_bias = model.head.weight.detach().t(), model.head.bias.detach()
        self.table: torch.Tensor | None = None
        if self.embed.device.type == "cpu":
            w_ih, _, b_ih, _ = self.weights[0]
            self.table = torch.addmm(b_ih, self.embed, w_ih.t())
            self.weights[0][0] = w_ih.new_empty(w_ih.shape[0], 0)

    @staticmethod
    def split(state: State) -> list[torch.Tensor]:
        """The model's stacked state -> the stepper's flat list."""
        return [s for part in state for s in part.unbind(0)]

    def __call__(self, ids: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """ids (batch,) and states -> next-token logits (batch, vocab) and the new states."""
        n = self.layers
        if self.table is not None:
            x, first_bias = self.table.new_empty(ids.shape[0], 0), self.table.index_select(0, ids)
        else:
            x, first_bias = self.embed[ids], self.weights[0][2]
        hs, cs = [], []
        for k in range(n):
            w_ih, w_hh, b_ih, b_hh = self.weights[k]
            b_ih = first_bias if k == 0 else b_ih
            if self.lstm:
                h, c = self.cell(x, (states[k], states[n + k]), w_ih, w_hh, b_ih, b_hh)
                cs.append(c)
            else:
                h = self.cell(x, states[k], w_ih, w_hh, b_ih, b_hh)
            hs.append(h)
            x = h
        return torch.addmm(self.head_bias, x, self.head_weight), hs + cs


# fbgemm's fused single-step cells over fp16 weights, for the cells PyTorch ships.
_HALF_CELL_KERNELS = {
    "lstm": "quantized_lstm_cell_dynamic",
    "gru": "quantized_gru_cell_dynamic",
    "rnn": "quantized_rnn_tanh_cell_dynamic",
    "rnn-relu": "quantized_rnn_relu_cell_dynamic",
}
HALF_CELLS = tuple(_HALF_CELL_KERNELS)


class HalfStepper:
    """The Stepper with the recurrent weights stored as fp16, stepped by fbgemm's fused cells
    (CPU; activations, sums and the state stay fp32). For lstm, gru, rnn and rnn-relu.

    Why: a batch-1 step reads every weight once, so it runs at the speed the weights stream from
    memory. A 2x512 GRU's 9.5 MB of fp32 weights overflow this machine's share of the L3 cache;
    half the bytes fit: 2.5x the fp32 Stepper's speed for that GRU, 3x for the LSTM (bench/generate.py).
    Each weight moves by at most 2^-11 of itself, so the logits move by about 1e-4 of their size:
    samples and log-probabilities differ from the fp32 network's only where two tokens are that close.
    """

    @staticmethod
    def supports(cell: str, device: torch.device) -> bool:
        """Whether fp16 steps can run: on the CPU, for the cells PyTorch ships, with a torch build
        that has fbgemm's fp16 kernels (x86)."""
        return (
            device.type == "cpu"
            and cell in HALF_CELLS
            and "fbgemm" in torch.backends.quantized.supported_engines
            and hasattr(torch.ops.quantized, "quantized_gru_cell_dynamic")
        )

    def __init__(self, model: CharRNN) -> None:
        cfg, rnn = model.cfg, model.rnn
        if not self.supports(cfg.cell, model.head.weight.device):
            raise CharRNNError(
                f"--precision fp16 needs the CPU, a torch build with fbgemm and one of the cells {', '.join(HALF_CELLS)}; "
                "use fp32"
            )
        pack = torch.ops.quantized.linear_prepack_fp16
        self.cell = getattr(torch.ops.quantized, _HALF_CELL_KERNELS[cfg.cell])
        self.layers, self.lstm = cfg.layers, cfg.cell == "lstm"
        # Per layer, the kernel's four weight arguments. It adds the biases packed with the
        # matrices; the two bias arguments its signature also takes go unused.
        self.weights = []
        for k in range(cfg.layers):
            w_ih, w_hh, b_ih, b_hh = (getattr(rnn, f"{n}_l{k}").detach() for n in _WEIGHT_NAMES)
            self.weights.append((pack(w_ih, b_ih), pack(w_hh, b_hh), b_ih, b_hh))
        self.embed = model.embed.weight.detach()
        self.head_weight, self.head_bias = model.head.weight.detach().t(), model.head.bias.detach()
        # A character vocabulary's small output layer stays fp32 (fbgemm's fixed cost per call
        # outweighs the bytes saved); a subword vocabulary's large one is packed too.
        self.head = pack(self.head_weight.t().contiguous(), self.head_bias) if cfg.vocab_size > 1024 else None

    split = staticmethod(Stepper.split)

    def __call__(self, ids: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        n, x = self.layers, self.embed.index_select(0, ids)
        hs, cs = [], []
        for k, weights in enumerate(self.weights):
            if self.lstm:
                x, c = self.cell(x, [states[k], states[n + k]], *weights)
                cs.append(c)
            else:
                x = self.cell(x, states[k], *weights)
            hs.append(x)
        if self.head is not None:
            return torch.ops.quantized.linear_dynamic_fp16(x, self.head), hs + cs
        return torch.addmm(self.head_bias, x, self.head_weight), hs + cs


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
