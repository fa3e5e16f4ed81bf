from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charrnn import gradflow
from charrnn.config import CELLS, ModelConfig
from charrnn.model import CharRNN
from charrnn.registry import CELL_INFO

from .conftest import png_size


def _model(cell: str, layers: int = 2, forget_bias: float = 0.0) -> CharRNN:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=12, cell=cell, hidden_size=16, embed_size=8, layers=layers, forget_bias=forget_bias)
    return CharRNN(cfg)


def _reference_norms(model: CharRNN, window: torch.Tensor, seq_len: int, t: int) -> list[float]:
    """||dL/dh_t|| (and ||dL/dc_t||) the independent way: the fused layer restarted after step t
    from a leaf state, so the gradient on that leaf is the one wanted (for t < seq_len - 1)."""
    model = model.double().eval()
    steps = window[:, gradflow.BURN_IN : gradflow.BURN_IN + seq_len]
    with torch.no_grad():
        _, state = model(window[:, : gradflow.BURN_IN])
        _, state = model(steps[:, : t + 1], state)
    leaves = tuple(s.clone().requires_grad_() for s in state)
    logits, _ = model(steps[:, t + 1 :], leaves)
    loss = F.cross_entropy(logits[:, -1], window[:, -1], reduction="sum")
    return [g.norm().item() for g in torch.autograd.grad(loss, leaves)]


@pytest.mark.parametrize("cell", CELLS)
def test_norms_match_an_independent_computation(cell):
    model = _model(cell)
    ids = np.full(400, 5)  # every window is the same, so the mean over windows is that window's value
    seq_len = 12
    h, c = gradflow.measure(model, ids, seq_len, batches=2, batch_size=3, seed=0)
    assert h.shape == (seq_len,) and (c is not None) == CELL_INFO[cell].cell_state
    window = torch.from_numpy(ids[: gradflow.BURN_IN + seq_len + 1][None])
    for t in (2, 7, 10):
        ref = _reference_norms(model, window, seq_len, t)
        assert h[seq_len - 1 - t] == pytest.approx(ref[0], rel=1e-9)
        if CELL_INFO[cell].cell_state:
            assert c[seq_len - 1 - t] == pytest.approx(ref[1], rel=1e-9)


def test_horizon():
    p = gradflow.Profile("x", "rnn", 0.5 ** np.arange(30.0))
    assert p.horizon() == 10  # 0.5**10 < 1e-3 <= 0.5**9
    assert gradflow.Profile("y", "rnn", np.ones(30)).horizon() is None
    cell = gradflow.Profile("z", "lstm", np.ones(30), np.r_[0.0, 0.1 ** np.arange(1.0, 30)])
    assert cell.horizon(cell_state=True) == 4  # measured against h[0]; c[0] = 0 is no horizon


def test_forget_bias_lengthens_the_cell_state_memory():
    ids = np.random.default_rng(1).integers(0, 12, 2000)
    h0, c0 = gradflow.measure(_model("lstm", 1), ids, 40, batches=2, batch_size=8)
    h1, c1 = gradflow.measure(_model("lstm", 1, forget_bias=1.0), ids, 40, batches=2, batch_size=8)
    assert c0[0] == c1[0] == 0.0
    assert c1[30] / h1[0] > 100 * c0[30] / h0[0]


def test_variants_label_each_forget_bias():
    assert gradflow.variants(["rnn", "lstm"], [0.0, 1.0]) == [
        ("rnn", "rnn", 0.0),
        ("lstm fb=0", "lstm", 0.0),
        ("lstm fb=1", "lstm", 1.0),
    ]
    assert gradflow.variants(["lstm"], [0.0]) == [("lstm", "lstm", 0.0)]
    # Every cell with a forget gate gets the sweep, not only nn.LSTM.
    assert [label for label, _, _ in gradflow.variants(["lstm-cifg", "gru"], [0.0, 1.0])] == [
        "lstm-cifg fb=0",
        "lstm-cifg fb=1",
        "gru",
    ]


def test_checkpoint_profile_table_and_plot(trained_run, corpus_file, tmp_path):
    profile = gradflow.profile_checkpoint(str(trained_run), [str(corpus_file)], 30, 2, 4, 0, "cpu")
    assert profile.cell == "lstm" and np.all(np.isfinite(profile.h)) and profile.val_bpc is not None
    assert gradflow.shown_distances(30) == [0, 1, 2, 5, 10, 20, 29]
    table = gradflow.table([profile], 30)
    assert len(table.rows) == 2  # h and c
    gradflow.plot([profile], tmp_path / "g.png")
    assert png_size(tmp_path / "g.png") == (600, 420)


@pytest.mark.slow
def test_compare_trains_and_measures_each_cell(corpus_file):
    profiles = gradflow.compare(
        str(corpus_file),
        ["rnn", "lstm"],
        [0.0, 1.0],
        2.0,
        20,
        {"hidden_size": 16, "embed_size": 8, "layers": 1, "dropout": 0.0},
        1,
        4,
        0,
        "cpu",
    )
    labels = [p.label for p in profiles]
    assert labels == [
        "rnn fresh",
        "rnn trained",
        "lstm fb=0 fresh",
        "lstm fb=0 trained",
        "lstm fb=1 fresh",
        "lstm fb=1 trained",
    ]
    assert all(p.val_bpc is not None for p in profiles[1::2]) and all(p.val_bpc is None for p in profiles[::2])
    assert not np.allclose(profiles[0].h, profiles[1].h)  # training changed the network
