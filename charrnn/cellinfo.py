"""The cell registry's light half: each cell's name, help and state layout, without torch.

config.py derives the allowed values of ModelConfig.cell from it, so `--help` stays torch-free.
`impl` names the torch-side spec (module:attribute, a `charrnn.cells.CellSpec`), imported on first
use by `cell_spec`. Adding a cell: its spec beside its code, one entry here, its test, docs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CellInfo:
    help: str
    impl: str  # "module:attribute" of the CellSpec
    cell_state: bool = False  # the state is (h, c) rather than (h,)
    forget_gate: bool = False  # --forget-bias applies


CELL_INFO: dict[str, CellInfo] = {
    "lstm": CellInfo("LSTM (PyTorch's fused kernels)", "charrnn.cells:LSTM", cell_state=True, forget_gate=True),
    "gru": CellInfo("GRU", "charrnn.cells:GRU"),
    "rnn": CellInfo("Elman RNN, tanh", "charrnn.cells:RNN_TANH"),
    "rnn-relu": CellInfo("IRNN: ReLU RNN with identity init (Le et al. 2015)", "charrnn.cells:RNN_RELU"),
    "lstm-peephole": CellInfo(
        "LSTM with peepholes (Gers & Schmidhuber 2000)", "charrnn.cells:PEEPHOLE", cell_state=True, forget_gate=True
    ),
    "lstm-cifg": CellInfo(
        "LSTM with coupled input-forget gate (Greff et al. 2015)",
        "charrnn.cells:CIFG",
        cell_state=True,
        forget_gate=True,
    ),
    "indrnn": CellInfo("IndRNN: ReLU, one recurrent weight per unit (Li et al. 2018)", "charrnn.indrnn:SPEC"),
}


def cell_spec(name: str) -> Any:
    """The torch-side CellSpec of the cell `name` (imports torch)."""
    module, attr = CELL_INFO[name].impl.split(":")
    return getattr(importlib.import_module(module), attr)
