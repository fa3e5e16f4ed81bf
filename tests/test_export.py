"""ONNX export: onnxruntime's logits match torch's over 200 steps for every cell, the tokenizer JSON
decodes like charrnn, and the README's onnxruntime example runs on an exported run."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from charrnn import checkpoint, export
from charrnn.config import CELLS, ModelConfig
from charrnn.errors import CharRNNError
from charrnn.model import CharRNN
from tests.conftest import ROOT, charrnn, charrnn_here

EXAMPLE = ROOT / "examples" / "onnx_generate.py"


def run_steps(session: ort.InferenceSession, model: CharRNN, ids: np.ndarray) -> np.ndarray:
    """Feed ids (batch, steps) one step at a time; every step's logits (batch, steps, vocab)."""
    names = export.state_names(model)
    state = {n: np.zeros((model.cfg.layers, ids.shape[0], model.cfg.hidden_size), np.float32) for n in names}
    logits = []
    for t in range(ids.shape[1]):
        out, *new = session.run(None, {"ids": ids[:, t].astype(np.int64), **state})
        state = dict(zip(names, new, strict=True))
        logits.append(out)
    return np.stack(logits, 1)


@pytest.mark.parametrize("cell", CELLS)
def test_onnxruntime_matches_torch_over_200_steps(cell: str):
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=40, cell=cell, hidden_size=24, embed_size=16, layers=2)).eval()
    session = ort.InferenceSession(export.to_onnx(model, {}))
    ids = np.random.default_rng(0).integers(0, 40, size=(3, 200))  # a batch of 3: the batch is dynamic
    with torch.no_grad():
        expected, _ = model(torch.from_numpy(ids))  # the training path, a whole sequence at once
    np.testing.assert_allclose(run_steps(session, model, ids), expected.numpy(), rtol=0, atol=1e-4)


def test_the_same_weights_give_the_same_bytes():
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=20, cell="gru", hidden_size=8, embed_size=4, layers=1))
    assert export.to_onnx(model, {"k": "v"}) == export.to_onnx(model, {"k": "v"})


def test_a_cell_the_exporter_cannot_express_is_named():
    model = CharRNN(ModelConfig(vocab_size=20, cell="rnn", hidden_size=8, embed_size=4, layers=1))

    def step(x, h, w_ih, w_hh, b_ih, b_hh):  # an op without an ONNX translation
        return torch.special.bessel_j0(torch.rnn_tanh_cell(x, h, w_ih, w_hh, b_ih, b_hh))

    model.spec = dataclasses.replace(model.spec, step=step)
    with pytest.raises(CharRNNError, match=r"^the ONNX exporter cannot express the rnn cell: .*bessel_j0") as e:
        export.to_onnx(model, {})
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def exported(trained_run: Path, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    done = charrnn("export", str(trained_run), "-o", str(out), cwd=out.parent)
    return out, done


def test_export_through_the_cli(exported, trained_run: Path):
    out, done = exported
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # stdout carries only a command's output; the exporter's chatter is kept off it
    assert "model.tokenizer.json" in done.stderr
    model, tok = checkpoint.build_model(checkpoint.load(trained_run / "best.pt"))
    described = json.loads((out.parent / "model.tokenizer.json").read_text(encoding="utf-8"))
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta[export.METADATA_KEY]) == described
    pieces = [bytes.fromhex(p) for p in described["pieces"]]
    ids = tok.encode("ROMEO: what light through yonder window breaks?\n").tolist()
    assert b"".join(pieces[i] for i in ids).decode("utf-8") == tok.decode(ids)
    assert described["model"]["inputs"] == ["ids", "h", "c"] and described["model"]["vocab_size"] == tok.vocab_size
    # The exported file gives the trained model's logits.
    session = ort.InferenceSession(str(out))
    ids_2d = np.array([ids])
    with torch.no_grad():
        expected, _ = model.eval()(torch.from_numpy(ids_2d))
    np.testing.assert_allclose(run_steps(session, model, ids_2d), expected.numpy(), rtol=0, atol=1e-4)


def test_readme_example_generates_from_the_export(exported):
    out, _ = exported
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(out), "ROMEO:", "120"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ROMEO:") and len(done.stdout) == len("ROMEO:") + 120 + 1  # + print's newline
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = EXAMPLE.read_text(encoding="utf-8").split('"""', 2)[2].strip()  # after the docstring
    assert code in readme, "README shows examples/onnx_generate.py as it is"


def test_export_of_a_missing_run_is_one_line(tmp_path: Path):
    done = charrnn_here("export", str(tmp_path / "nothing"), cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "no such checkpoint" in done.stderr
