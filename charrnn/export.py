"""`charrnn export`: the single-step network as an ONNX file, and its tokenizer beside it as JSON.

The ONNX graph is the generation path of charrnn.model.Stepper (each cell's single-step kernel, the
first layer's input projection as a lookup table), one token per call:

    inputs:  ids (batch,) int64; h (layers, batch, hidden) float32; c, the same, for cells with a cell state
    outputs: logits (batch, vocab) float32; h_out; c_out (feed them back as h and c)

The batch dimension is dynamic. The tokenizer goes to NAME.tokenizer.json beside NAME.onnx (and into the
ONNX file's metadata as charrnn.tokenizer): the UTF-8 bytes of every id as hex ("pieces": decoding is
joining them), the char vocabulary ("chars") or the SentencePiece model (base64 "tokenizer.model_proto")
for encoding, and the shapes the state inputs take.

Exporter: torch.onnx.export with dynamo=True, the torch.export-based exporter (it needs onnxscript, which
works offline). It is the one PyTorch maintains and defaults to; the TorchScript-based one (dynamo=False)
is deprecated. It takes a few seconds where the TorchScript one takes a fraction of one, but an export
is made once, and both write the same bytes for the same weights on every run (deterministic).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from charrnn import checkpoint
from charrnn.errors import CharRNNError
from charrnn.fileio import atomic_write
from charrnn.model import CharRNN, Stepper
from charrnn.tokenizers import Tokenizer

FORMAT = "charrnn-onnx-tokenizer"
METADATA_KEY = "charrnn.tokenizer"


class StepModule(nn.Module):
    """The Stepper as a module with stacked states, which is what the exporter traces."""

    def __init__(self, model: CharRNN) -> None:
        super().__init__()
        self.stepper = Stepper(model.eval())
        self.parts = 2 if model.cell_state else 1

    def forward(self, ids: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, flat = self.stepper(ids, Stepper.split(state))
        n = self.stepper.layers
        return (logits, *(torch.stack(flat[i * n : (i + 1) * n]) for i in range(self.parts)))


def state_names(model: CharRNN) -> list[str]:
    return ["h", "c"] if model.cell_state else ["h"]


def tokenizer_json(model: CharRNN, tokenizer: Tokenizer) -> dict[str, Any]:
    """What a program without charrnn needs to encode, decode and feed the ONNX model."""
    cfg = model.cfg
    return {
        "format": FORMAT,
        "version": 1,
        "kind": tokenizer.kind,
        "pieces": [piece.hex() for piece in tokenizer.pieces],
        "tokenizer": tokenizer.to_state(),  # charrnn.tokenizers.from_state() restores it
        "model": {
            "cell": cfg.cell,
            "layers": cfg.layers,
            "hidden_size": cfg.hidden_size,
            "vocab_size": cfg.vocab_size,
            "inputs": ["ids", *state_names(model)],
            "outputs": ["logits", *(f"{name}_out" for name in state_names(model))],
            # "newline": feed a newline first from the zero state, then the prime (ModelConfig.start)
            "start": cfg.start,
        },
    }


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter warns about things that do not concern this graph (torchvision ops, deprecations)
    and may print progress on stdout, which carries only a command's output."""
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        onnx_log.setLevel(level)


def to_onnx(model: CharRNN, metadata: dict[str, str]) -> bytes:
    """The serialized ONNX model of one step of `model` (on the CPU, fp32)."""
    for module in ("onnx", "onnxscript"):
        if importlib.util.find_spec(module) is None:
            raise CharRNNError(f"charrnn export needs {module}: pip install 'charrnn[onnx]'")
    model = model.to("cpu").float()
    names = state_names(model)
    batch = torch.export.Dim("batch")
    example = (torch.zeros(2, dtype=torch.long), *model.init_state(2))
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                StepModule(model),
                example,
                dynamo=True,
                input_names=["ids", *names],
                output_names=["logits", *(f"{name}_out" for name in names)],
                dynamic_shapes={"ids": {0: batch}, "state": tuple({1: batch} for _ in names)},
                verbose=False,
            )
    except Exception as e:  # the exporter fails in many ways, each with its own exception
        raise CharRNNError(f"the ONNX exporter cannot express the {model.cfg.cell} cell: {_reason(e)}") from None
    program.model.metadata_props.update(metadata)
    return program.model_proto.SerializeToString()


def _reason(e: BaseException) -> str:
    """The first line of the innermost cause: the exporter wraps the error that names the problem."""
    while e.__cause__ is not None:
        e = e.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # colour codes
    return (text.splitlines() or [type(e).__name__])[0]


@dataclass
class Exported:
    onnx: Path
    tokenizer: Path
    checkpoint: Path


def tokenizer_path(output: Path) -> Path:
    """model.onnx -> model.tokenizer.json"""
    return output.with_suffix(".tokenizer.json")


def export(run: str, output: Path) -> Exported:
    """Write the single-step ONNX model of a run (its best.pt) or checkpoint, and its tokenizer JSON."""
    source = checkpoint.resolve(run)
    model, tokenizer = checkpoint.build_model(checkpoint.load(source))
    described = json.dumps(tokenizer_json(model, tokenizer), ensure_ascii=False)
    data = to_onnx(model, {METADATA_KEY: described})
    output = Path(output)
    with atomic_write(output) as f:
        f.write(data)
    with atomic_write(tokenizer_path(output)) as f:
        f.write((described + "\n").encode())
    return Exported(output, tokenizer_path(output), source)
