"""The network: embedding -> stacked recurrent layers -> dropout -> linear over the vocabulary."""

from __future__ import annotations

import torch
from torch import nn

from charrnn.config import CELLS, ModelConfig
from charrnn.errors import CharRNNError
from charrnn.registry import CELL_INFO, cell_spec

# The recurrent state: (h, c) for the cells with a cell state, (h,) for the others; each tensor (layers, batch, hidden).
State = tuple[torch.Tensor, ...]


class CharRNN(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.spec = cell_spec(cfg.cell)
        self.cell_state = CELL_INFO[cfg.cell].cell_state
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_size)
        self.rnn = self.spec.build(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight
        nn.init.normal_(self.embed.weight, std=0.1 if not cfg.tie_weights else cfg.hidden_size**-0.5)
        self.spec.init(self.rnn, cfg)
        self._stepper: tuple[tuple, Stepper | HalfStepper] | None = None  # see stepper()

    def constrain(self, seq_len: int) -> None:
        """Keep the recurrent weights within the cell's bounds for a training window of seq_len
        (IndRNN's |u| bound); the training loop calls it after each optimizer step."""
        self.spec.constrain(self.rnn, seq_len)

    @property
    def newline_first(self) -> bool:
        """Whether every text is read from the reset state after a newline (ModelConfig.start)."""
        return self.cfg.start == "newline"

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        cfg = self.cfg
        device = device or self.head.weight.device
        zeros = torch.zeros(cfg.layers, batch_size, cfg.hidden_size, device=device)
        return (zeros, zeros.clone()) if self.cell_state else (zeros,)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids (batch, time) -> logits (batch, time, vocab) and the state after the last step."""
        x = self.embed(ids)
        if state is None:
            out, new = self.rnn(x)
        else:
            out, new = self.rnn(x, state if self.cell_state else state[0])
        new = tuple(new) if isinstance(new, tuple) else (new,)
        return self.head(self.drop(out)), new

    def stepper(self, precision: str = "fp32") -> Stepper | HalfStepper:
        """A fast one-token-at-a-time view of this network for generation (see Stepper);
        precision "fp16" stores its weights as fp16 (CPU only, see HalfStepper).

        Kept until the weights change or move, so repeated generation from one model does not
        pay for building it again (packing the fp16 weights is not free)."""
        key = (precision, self.head.weight.device, tuple(p._version for p in self.parameters()))
        if self._stepper is None or self._stepper[0] != key:
            self._stepper = (key, HalfStepper(self) if precision == "fp16" else Stepper(self))
        return self._stepper[1]


def restart_rows(state: State, resets: torch.Tensor | None) -> State:
    """The state with the rows that `resets` (a (rows,) bool mask, or None: none) set to the reset state."""
    if resets is None or not bool(resets.any()):
        return state
    keep = (~resets).to(device=state[0].device, dtype=state[0].dtype)[None, :, None]
    return tuple(s * keep for s in state)


class Stepper:
    """Advances the network one token at a time, with as little work per step as eager PyTorch allows.

    - Each cell's single-step kernel from its registry spec (torch.lstm_cell, gru_cell, ...): at
      batch 1 on CPU these fused kernels run several times faster than nn.LSTM's sequence kernel.
    - On the CPU the first layer's input projection, embedding @ W_ih^T + b_ih, is a (vocab, gates)
      table made once: a row lookup replaces a matmul per step. The cell takes the row as its input
      bias, with a zero-width input. (CUDA's fused cell kernels want 1-D biases, so not there.)
    - The state is a flat list of (batch, hidden) tensors, h of every layer, then c of every layer
      for a cell with a cell state: nothing is stacked or split per step.

    Weights are read when the stepper is made; dropout is off, as in eval mode.
    """

    def __init__(self, model: CharRNN) -> None:
        cfg, rnn = model.cfg, model.rnn
        self.layers, self.lstm, self.cell = cfg.layers, model.cell_state, model.spec.step
        self.weights = [
            [None if t is None else t.detach() for t in model.spec.step_weights(rnn, k)] for k in range(cfg.layers)
        ]
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


# The cells with one of fbgemm's fused single-step kernels over fp16 weights (CellSpec.half_kernel).
HALF_CELLS = tuple(name for name in CELLS if cell_spec(name).half_kernel)


class HalfStepper:
    """The Stepper with the recurrent weights stored as fp16, stepped by fbgemm's fused cells
    (CPU; activations, sums and the state stay fp32). For the cells in HALF_CELLS.

    Why: a batch-1 step reads every weight once, so it runs at the speed the weights stream from
    memory; when a model's fp32 weights overflow the cache, half the bytes may fit
    (bench/generate.py, bench/results/generate.json).
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
                f"precision fp16 needs the CPU, a torch build with fbgemm and one of the cells {', '.join(HALF_CELLS)}; "
                "use precision fp32",
                "precision",
            )
        pack = torch.ops.quantized.linear_prepack_fp16
        self.cell = getattr(torch.ops.quantized, model.spec.half_kernel)
        self.layers, self.lstm = cfg.layers, model.cell_state
        # Per layer, the kernel's four weight arguments. It adds the biases packed with the
        # matrices; the two bias arguments its signature also takes go unused.
        self.weights = []
        for k in range(cfg.layers):
            w_ih, w_hh, b_ih, b_hh = (t.detach() for t in model.spec.step_weights(rnn, k))
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


def compiled(module: nn.Module) -> nn.Module:
    """torch.compile(module), leaving the hand-written recurrences (`hand_written_loop` modules) to
    run as they are. Dynamo is imported here, when compiling: imported with the cells, it would
    cost every command most of its start-up."""
    for m in module.modules():
        if getattr(m, "hand_written_loop", False):
            m.forward = torch.compiler.disable(m.forward)
    return torch.compile(module)
