"""The registries' light halves: each cell's and tokenizer's name, help and the facts config
needs, without torch, numpy or sentencepiece.

config.py derives the allowed values of ModelConfig.cell and DataConfig.tokenizer from these, so
`--help` stays fast. `impl` names the implementation (module:attribute), imported on first use:
for a cell a `charrnn.cells.CellSpec`, for a tokenizer its class in charrnn/tokenizers.py.
Adding one: its implementation beside its kind, one entry here, its test, docs.
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


@dataclass(frozen=True)
class TokenizerInfo:
    help: str
    impl: str  # "module:attribute" of the tokenizer class
    uses_vocab_size: bool = False  # --vocab-size applies (a learned subword vocabulary)


TOKENIZER_INFO: dict[str, TokenizerInfo] = {
    "char": TokenizerInfo("one id per character seen in the corpus", "charrnn.tokenizers:CharTokenizer"),
    "byte": TokenizerInfo("the 256 bytes of UTF-8", "charrnn.tokenizers:ByteTokenizer"),
    "bpe": TokenizerInfo("SentencePiece BPE", "charrnn.tokenizers:SentencePieceTokenizer", uses_vocab_size=True),
    "unigram": TokenizerInfo(
        "SentencePiece unigram", "charrnn.tokenizers:SentencePieceTokenizer", uses_vocab_size=True
    ),
}


def _load(impl: str) -> Any:
    module, attr = impl.split(":")
    return getattr(importlib.import_module(module), attr)


def cell_spec(name: str) -> Any:
    """The torch-side CellSpec of the cell `name` (imports torch)."""
    return _load(CELL_INFO[name].impl)


def tokenizer_class(name: str) -> Any:
    """The tokenizer class registered as `name` (imports numpy)."""
    return _load(TOKENIZER_INFO[name].impl)
