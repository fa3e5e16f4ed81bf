"""Find the units that track something: probes computed from a text (inside quotes, bracket depth,
position in the line, start of a word, after a newline) and the units of a layer ranked by how
strongly their activations correlate with each probe, as in Karpathy, Johnson and Fei-Fei's
"Visualizing and Understanding Recurrent Networks" (2015). No torch here; `find_units` reads the
activations through charrnn.score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from charrnn.model import CharRNN
    from charrnn.tokenizers import Tokenizer

# Each probe's value belongs to a character: what holds once the model has read it.
PROBES: dict[str, str] = {
    "in_quotes": "inside a quoted string",
    "bracket_depth": "depth of open ( [ {",
    "line_position": "characters since the last newline",
    "word_start": "the first character of a word",
    "after_newline": "the character read is a newline",
}
OPENERS, CLOSERS = "([{", ")]}"


def char_probes(text: str) -> dict[str, np.ndarray]:
    """Each probe's value after each character of `text` (float32 arrays of len(text)), in one pass.

    A double quote opens or closes a string anywhere; a single quote opens one only where it follows no
    letter or digit (so the apostrophe of "don't" opens nothing) and closes at its match or at the end
    of the line. Bracket depth never goes below zero."""
    values = {name: np.zeros(len(text), dtype=np.float32) for name in PROBES}
    quote, depth, column, previous = "", 0, 0, "\n"
    for i, char in enumerate(text):
        before = quote
        if quote:
            if char == quote or (char == "\n" and quote == "'"):
                quote = ""
        elif char == '"' or (char == "'" and not previous.isalnum()):
            quote = char
        depth = depth + 1 if char in OPENERS else max(depth - 1, 0) if char in CLOSERS else depth
        column = 0 if char == "\n" else column + 1
        values["in_quotes"][i] = bool(quote or before)  # both quote marks belong to the string
        values["bracket_depth"][i] = depth
        values["line_position"][i] = column
        values["word_start"][i] = char.isalnum() and not previous.isalnum()
        values["after_newline"][i] = char == "\n"
        previous = char
    return values


def token_probes(text: str, tokens: Sequence[tuple[int, str]]) -> dict[str, np.ndarray]:
    """The probes at each token (char offset, token text): their value at the token's last character,
    the state the model is in once it has read the token."""
    if not text:
        return {name: np.zeros(len(tokens), dtype=np.float32) for name in PROBES}
    per_char = char_probes(text)
    ends = np.array([start + max(len(piece), 1) - 1 for start, piece in tokens], dtype=np.int64)
    ends = np.clip(ends, 0, len(text) - 1)
    return {name: values[ends] for name, values in per_char.items()}


def correlations(values: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Pearson correlation of each unit (column of `values`, [positions, units]) with `probe`
    ([positions]); 0 where the unit or the probe does not vary."""
    x = values.astype(np.float64)
    x -= x.mean(axis=0)
    y = probe.astype(np.float64) - probe.mean()
    spread = np.sqrt((x * x).sum(axis=0) * (y @ y))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (y @ x) / spread
    return np.where(spread > 0, r, 0.0)


@dataclass(frozen=True)
class UnitScore:
    layer: int
    unit: int
    r: float  # Pearson correlation with the probe, -1..1

    def to_dict(self) -> dict:
        return {"layer": self.layer, "unit": self.unit, "r": round(self.r, 4)}


def rank_units(
    layers: dict[int, np.ndarray], probes: dict[str, np.ndarray], top: int = 5
) -> dict[str, list[UnitScore]]:
    """For each probe, the `top` units of the given layers ({layer: values [positions, units]}) by
    |correlation| with it, strongest first."""
    ranked: dict[str, list[UnitScore]] = {}
    for name, probe in probes.items():
        scores = [
            UnitScore(layer, unit, float(r))
            for layer, values in layers.items()
            for unit, r in enumerate(correlations(values, probe))
        ]
        ranked[name] = sorted(scores, key=lambda s: (-abs(s.r), s.layer, s.unit))[:top]
    return ranked


def find_units(
    model: CharRNN,
    tokenizer: Tokenizer,
    text: str,
    *,
    layers: Sequence[int],
    kind: str = "hidden",
    top: int = 5,
    device: torch.device | None = None,
) -> dict[str, list[UnitScore]]:
    """Rank the units of `layers` (of one kind: "hidden", or for LSTMs "cell" or a gate) by correlation
    with each probe computed from `text`."""
    from charrnn.score import activations

    found = {layer: activations(model, tokenizer, text, layer=layer, kind=kind, device=device) for layer in layers}
    tokens = next(iter(found.values())).tokens if found else []
    return rank_units({layer: a.values for layer, a in found.items()}, token_probes(text, tokens), top)
