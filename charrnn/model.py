"""The network: embedding -> stacked recurrent layers -> dropout -> linear over the vocabulary."""

from __future__ import annotations

import torch
from torch import nn

from charrnn.config import ModelConfig

# The recurrent state: (h, c) for an LSTM, (h,) for the others; each tensor (layers, batch, hidden).
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
        elif cfg.cell == "gru":
            self.rnn = nn.GRU(**rnn_args)
        else:
            self.rnn = nn.RNN(nonlinearity="relu" if cfg.cell == "rnn-relu" else "tanh", **rnn_args)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight
        self._init_weights()

    def _init_weights(self) -> None:
        cfg = self.cfg
        nn.init.normal_(self.embed.weight, std=0.1 if not cfg.tie_weights else cfg.hidden_size**-0.5)
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
        return (zeros, zeros.clone()) if cfg.cell == "lstm" else (zeros,)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids (batch, time) -> logits (batch, time, vocab) and the state after the last step."""
        x = self.embed(ids)
        if state is None:
            out, new = self.rnn(x)
        else:
            out, new = self.rnn(x, state if self.cfg.cell == "lstm" else state[0])
        new = tuple(new) if isinstance(new, tuple) else (new,)
        return self.head(self.drop(out)), new

    @torch.inference_mode()
    def step(self, ids: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One time step for generation: ids (batch,) -> logits (batch, vocab).

        Uses the fused single-step cell kernels: at batch 1 on CPU they run several times faster
        than nn.LSTM's sequence kernel (measured 1.65 vs 7.4 ms per step at 2x512), and they need
        no (batch, 1) reshaping. Dropout is off, as in eval mode.
        """
        cfg, rnn = self.cfg, self.rnn
        x = self.embed(ids)
        hs, cs = list(state[0].unbind(0)), (list(state[1].unbind(0)) if cfg.cell == "lstm" else None)
        for k in range(cfg.layers):
            weights = (
                getattr(rnn, f"weight_ih_l{k}"),
                getattr(rnn, f"weight_hh_l{k}"),
                getattr(rnn, f"bias_ih_l{k}"),
                getattr(rnn, f"bias_hh_l{k}"),
            )
            if cfg.cell == "lstm":
                hs[k], cs[k] = torch.lstm_cell(x, (hs[k], cs[k]), *weights)
            elif cfg.cell == "gru":
                hs[k] = torch.gru_cell(x, hs[k], *weights)
            elif cfg.cell == "rnn":
                hs[k] = torch.rnn_tanh_cell(x, hs[k], *weights)
            else:
                hs[k] = torch.rnn_relu_cell(x, hs[k], *weights)
            x = hs[k]
        new = (torch.stack(hs), torch.stack(cs)) if cs is not None else (torch.stack(hs),)
        return self.head(x), new


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
