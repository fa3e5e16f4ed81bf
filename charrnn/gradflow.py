"""The vanishing/exploding-gradient lens: how far back in time the loss at one step reaches.

For a window of T steps, the loss at the last step is differentiated with respect to the
hidden state (and the LSTM cell state) at every earlier step t. The norm of that gradient is
the norm of the product of Jacobians that backpropagation through time multiplies; plotted
against the distance T-1-t it shows how quickly a cell forgets (vanishing) or blows up
(exploding).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.table import Table

from charrnn import checkpoint, data
from charrnn import trainer as training
from charrnn.config import DataConfig, TrainConfig
from charrnn.errors import CharRNNError
from charrnn.model import CharRNN
from charrnn.registry import CELL_INFO
from charrnn.runtime import resolve_device
from charrnn.tokenizers import Tokenizer
from charrnn.ui import TrainProgress

log = logging.getLogger("charrnn")

THRESHOLD = 1e-3  # the horizon: where a norm falls below this fraction of ||dL/dh|| at the last step
BURN_IN = 100  # tokens run before each window so the state there is a realistic one, not zeros
MAX_TEXT_CHARS = 2_000_000  # windows are drawn from the start of the corpus, up to this much


@dataclass
class Profile:
    """Mean gradient norms by distance from the last step (index 0 is the last step itself).

    Both are measured against h[0], the gradient at the output: c[0] is zero by definition,
    since the last cell state reaches the loss only through a next step there is not.
    """

    label: str
    cell: str
    h: np.ndarray
    c: np.ndarray | None = None  # the cell state of the LSTM cells
    val_bpc: float | None = None

    def horizon(self, cell_state: bool = False) -> int | None:
        """The first distance (from 1) where the norm is below THRESHOLD x h[0]; None: never."""
        norms = self.c if cell_state else self.h
        below = np.nonzero(norms[1:] < THRESHOLD * self.h[0])[0]
        return int(below[0]) + 1 if len(below) else None


def corpus_ids(
    tokenizer: Tokenizer, sources: list[str], max_chars: int = MAX_TEXT_CHARS, encoding: str = "utf-8"
) -> np.ndarray:
    """The first `max_chars` characters of the corpus as token ids (unknown characters dropped)."""
    parts, seen = [], 0
    for chunk in data.read_text(data.resolve_sources(sources, Path(tempfile.gettempdir())), "replace", encoding):
        parts.append(tokenizer.encode(chunk[: max_chars - seen], unknown="skip"))
        seen += len(chunk)
        if seen >= max_chars:
            break
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _unroll(model: CharRNN, x: torch.Tensor, state: tuple[torch.Tensor, ...]):
    """Run the recurrence one step at a time, keeping every step's state as a graph node.

    The state carried to the next step is a clone of what the cell returns, so its gradient is
    the gradient with respect to the recurrent state s_t = (h_t, c_t of every layer) as BPTT
    sees it: only through s_t+1 (and, at the last step, the output head), not through the
    layer above at the same step nor, for c_t, through the h_t made from it.
    Returns the logits of the last step and, per step, the per-layer hidden and cell states.
    """
    cfg = model.cfg
    h = list(state[0].unbind(0))
    c = list(state[1].unbind(0)) if model.cell_state else []
    hs, cs = [], []
    emb = model.embed(x)
    for t in range(x.shape[1]):
        inp = emb[:, t]
        for k in range(cfg.layers):
            weights = model.spec.step_weights(model.rnn, k)
            if model.cell_state:
                out, cell = model.spec.step(inp, (h[k], c[k]), *weights)
                c[k] = cell.clone()
            else:
                out = model.spec.step(inp, h[k], *weights)
            h[k] = out.clone()
            inp = out
        hs.append(list(h))
        cs.append(list(c))
    return model.head(h[-1]), hs, cs


def _norms(grads: tuple[torch.Tensor, ...], steps: int, layers: int) -> torch.Tensor:
    """Per-step gradient norms over all layers, averaged over the batch: (steps,)."""
    g = torch.stack(grads).view(steps, layers, *grads[0].shape)  # (T, layers, B, H)
    return g.pow(2).sum(dim=(1, 3)).sqrt().mean(dim=1)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Single steps at batch 16 are too small to gain from intra-op threads, which only add
    synchronization, which costs far more than the work on busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def measure(
    model: CharRNN,
    ids: np.ndarray,
    seq_len: int,
    batches: int = 4,
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean ||d loss_T / d h_t|| (and for the LSTM ||d loss_T / d c_t||) by distance T-1-t.

    Windows are drawn at random from `ids`. Float64 so that fast-vanishing norms stay
    measurable instead of underflowing to zero; dropout is off.
    """
    need = BURN_IN + seq_len + 1
    if len(ids) < need:
        raise CharRNNError(f"the text ({len(ids):,} tokens) is too short for windows of {need} tokens")
    model = copy.deepcopy(model).double().to(device).eval()
    rng = np.random.default_rng(seed)
    sum_h = torch.zeros(seq_len, dtype=torch.float64)
    sum_c = torch.zeros(seq_len, dtype=torch.float64)
    with _one_thread():
        for _ in range(batches):
            starts = rng.integers(0, len(ids) - need + 1, size=batch_size)
            rows = np.stack([np.asarray(ids[s : s + need], dtype=np.int64) for s in starts])
            _accumulate(model, torch.from_numpy(rows).to(device), seq_len, sum_h, sum_c)
    by_distance = (sum_h / batches).flip(0).numpy()
    return by_distance, ((sum_c / batches).flip(0).numpy() if model.cell_state else None)


def _accumulate(model: CharRNN, windows: torch.Tensor, seq_len: int, sum_h: torch.Tensor, sum_c: torch.Tensor) -> None:
    """Add one batch of windows' per-step gradient norms to the running sums."""
    with torch.no_grad():
        _, state = model(windows[:, :BURN_IN])
    logits, hs, cs = _unroll(model, windows[:, BURN_IN : BURN_IN + seq_len], state)
    loss = F.cross_entropy(logits, windows[:, -1], reduction="sum")  # each window's own gradient
    flat_h = [t for step in hs for t in step]
    flat_c = [t for step in cs for t in step]
    # Lower layers' last states reach no loss (there is no next step): their gradient is zero.
    grads = torch.autograd.grad(loss, flat_h + flat_c, allow_unused=True, materialize_grads=True)
    sum_h += _norms(grads[: len(flat_h)], seq_len, model.cfg.layers).cpu()
    if flat_c:
        sum_c += _norms(grads[len(flat_h) :], seq_len, model.cfg.layers).cpu()


def profile_checkpoint(
    path: str, corpus: list[str] | None, seq_len: int, batches: int, batch_size: int, seed: int, device
) -> Profile:
    """Measure a trained checkpoint on its own training corpus, or on `corpus` when given."""
    ckpt = checkpoint.load(path)
    model, tokenizer = checkpoint.build_model(ckpt)
    sources = corpus or ckpt.data_config.sources
    if "-" in sources:
        raise CharRNNError(f"{path} was trained on stdin; measure it on a file: corpus FILE", "corpus")
    ids = corpus_ids(tokenizer, sources, encoding=ckpt.data_config.encoding)
    h, c = measure(model, ids, seq_len, batches, batch_size, seed, device)
    bpc = ckpt.cursor.best_val_bpc if ckpt.cursor is not None else None
    return Profile(str(path), model.cfg.cell, h, c, bpc if bpc is not None and math.isfinite(bpc) else None)


def variants(cells: list[str], forget_biases: list[float]) -> list[tuple[str, str, float]]:
    """(label, cell, forget bias) for each model to compare; a cell with a forget gate once per bias."""
    out = []
    for cell in cells:
        biases = forget_biases if CELL_INFO[cell].forget_gate else [0.0]
        for fb in biases:
            out.append((f"{cell} fb={fb:g}" if len(biases) > 1 else cell, cell, fb))
    return out


def compare(
    corpus: str,
    cells: list[str],
    forget_biases: list[float],
    budget: float,
    seq_len: int,
    model_cfg: dict,
    batches: int,
    batch_size: int,
    seed: int,
    device: str,
) -> list[Profile]:
    """Each cell freshly initialized and after `budget` seconds of training, measured alike.

    The fresh model is built with the training seed, so it is exactly the network the
    training run started from. Training runs on one thread too: these small models gain
    nothing from intra-op threads, and on busy cores two threads ran several times slower.
    """
    profiles: list[Profile] = []
    with tempfile.TemporaryDirectory(prefix="charrnn-gradflow-") as tmp, _one_thread():
        for label, cell, fb in variants(cells, forget_biases):
            log.info("training %s for %gs on %s", label, budget, corpus)
            result = training.train(
                DataConfig(sources=[corpus], cache_dir=str(Path(tmp) / "cache")),
                {**model_cfg, "cell": cell, "forget_bias": fb},
                TrainConfig(
                    time_budget=budget, seq_len=seq_len, eval_every=10**9, warmup_steps=50, seed=seed, device=device
                ),
                out=str(Path(tmp) / label.replace(" ", "_")),
                progress=TrainProgress(enabled=False),
                command=["charrnn", "gradflow", "--compare"],
            )
            trained, tokenizer = checkpoint.build_model(checkpoint.load(result.run_dir / "best.pt"))
            torch.manual_seed(seed)
            fresh = CharRNN(trained.cfg)
            ids = corpus_ids(tokenizer, [corpus])
            run_device = resolve_device(device)
            for name, model, bpc in (
                (f"{label} fresh", fresh, None),
                (f"{label} trained", trained, result.best_val_bpc),
            ):
                h, c = measure(model, ids, seq_len, batches, batch_size, seed, run_device)
                profiles.append(Profile(name, cell, h, c, bpc))
            log.info("%s: %d steps, val %.3f bits/char", label, result.steps, result.best_val_bpc)
    return profiles


def shown_distances(seq_len: int) -> list[int]:
    """A roughly logarithmic set of distances that ends at the window's far end."""
    picks = [d for d in (0, 1, 2, 5, 10, 20, 50, 100, 150) if d < seq_len - 1]
    return [*picks, seq_len - 1]


def table(profiles: list[Profile], seq_len: int) -> Table:
    distances = shown_distances(seq_len)
    out = Table(title=f"||d loss(T) / d state(t)|| by distance T-t  (T = {seq_len}; mean over windows)")
    out.add_column("model", no_wrap=True)
    out.add_column("state")
    for d in distances:
        out.add_column(str(d), justify="right")
    out.add_column(f"horizon (<{THRESHOLD:g}x)", justify="right")
    out.add_column("val bpc", justify="right")
    for p in profiles:
        for name, norms in (("h", p.h), ("c", p.c)):
            if norms is None:
                continue
            horizon = p.horizon(cell_state=name == "c")
            out.add_row(
                p.label,
                name,
                *(f"{norms[d]:.1e}" for d in distances),
                f">{seq_len - 1}" if horizon is None else str(horizon),
                "" if p.val_bpc is None or name == "c" else f"{p.val_bpc:.3f}",
            )
    return out


def plot(profiles: list[Profile], out: Path) -> None:
    """Relative norm against distance on a log scale: fresh models left, trained right."""
    from charrnn.plot import pyplot

    plt = pyplot()
    if plt is None:
        raise CharRNNError(f"writing {out} needs matplotlib, which is not installed: pip install matplotlib")
    fresh = [p for p in profiles if p.label.endswith(" fresh")]
    trained = [p for p in profiles if p not in fresh]
    panels = [(t, ps) for t, ps in (("freshly initialized", fresh), ("trained", trained)) if ps]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), dpi=100, squeeze=False, sharey=True)
    colors = {}
    for ax, (title, group) in zip(axes[0], panels, strict=True):
        for p in group:
            name = p.label.removesuffix(" fresh").removesuffix(" trained")
            color = colors.setdefault(name, f"C{len(colors)}")
            ax.semilogy(p.h / p.h[0], color=color, label=f"{name} h")
            if p.c is not None:  # c[0] is zero (see Profile)
                ax.semilogy(np.arange(1, len(p.c)), p.c[1:] / p.h[0], color=color, linestyle="--", label=f"{name} c")
        ax.axhline(THRESHOLD, color="grey", linewidth=0.8, linestyle=":")
        ax.set(title=title, xlabel="distance T - t (steps back)")
        ax.grid(alpha=0.3, which="major")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("||dL_T / d state_t||  /  ||dL_T / d h_T||")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
