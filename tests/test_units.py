"""Probes computed from known strings, and the ranking of units by correlation with them."""

from __future__ import annotations

import numpy as np
import pytest

from charrnn import units


def probe(text: str, name: str) -> list[float]:
    return units.char_probes(text)[name].tolist()


def test_quotes_open_close_and_apostrophes_open_nothing():
    assert probe('a "b" c', "in_quotes") == [0, 0, 1, 1, 1, 0, 0]
    assert probe("don't", "in_quotes") == [0, 0, 0, 0, 0]
    assert probe("x='a'\ny", "in_quotes") == [0, 0, 1, 1, 1, 0, 0]
    # an unclosed single quote ends with its line; a double quote goes on (dialogue across lines)
    assert probe("'a\nb", "in_quotes") == [1, 1, 1, 0]
    assert probe('"a\nb', "in_quotes") == [1, 1, 1, 1]


def test_bracket_depth_nests_and_never_goes_negative():
    assert probe("f(a[1]) )x", "bracket_depth") == [0, 1, 1, 2, 2, 1, 0, 0, 0, 0]
    assert probe("{(})", "bracket_depth") == [1, 2, 1, 0]


def test_line_position_word_start_and_newline():
    text = "ab c\nde"
    assert probe(text, "line_position") == [1, 2, 3, 4, 0, 1, 2]
    assert probe(text, "word_start") == [1, 0, 0, 1, 0, 1, 0]
    assert probe(text, "after_newline") == [0, 0, 0, 0, 1, 0, 0]


def test_every_probe_has_a_value_per_character():
    text = 'print("hi", [1, 2])\n' * 3
    found = units.char_probes(text)
    assert set(found) == set(units.PROBES)
    assert all(values.shape == (len(text),) for values in found.values())


def test_token_probes_take_the_value_at_each_tokens_last_character():
    text = 'say "hi" now'
    tokens = [(0, "say "), (4, '"h'), (6, 'i"'), (8, " now")]
    at_tokens = units.token_probes(text, tokens)
    assert at_tokens["in_quotes"].tolist() == [0, 1, 1, 0]
    assert at_tokens["line_position"].tolist() == [4, 6, 8, 12]
    assert units.token_probes("", [])["in_quotes"].shape == (0,)


def test_correlation_is_pearsons_and_zero_for_a_constant():
    rng = np.random.default_rng(0)
    probe_values = rng.normal(size=200).astype(np.float32)
    values = np.stack([probe_values * 3 + 1, -probe_values, np.ones(200), rng.normal(size=200)], axis=1)
    r = units.correlations(values.astype(np.float16), probe_values)
    assert r[0] == pytest.approx(1, abs=1e-3) and r[1] == pytest.approx(-1, abs=1e-3)
    assert r[2] == 0 and abs(r[3]) < 0.3
    assert r[3] == pytest.approx(np.corrcoef(values[:, 3], probe_values)[0, 1], abs=1e-2)
    assert units.correlations(values, np.zeros(200)).tolist() == [0, 0, 0, 0]


def test_a_planted_unit_that_follows_a_probe_ranks_first_for_it():
    text = 'x = ("a", [b, "c d"])\n' * 20 + "def f(y):\n    return 'z'\n" * 10
    tokens = [(i, c) for i, c in enumerate(text)]
    probes = units.token_probes(text, tokens)
    rng = np.random.default_rng(1)
    noise = {layer: rng.normal(size=(len(text), 16)).astype(np.float16) for layer in (0, 1)}
    noise[1][:, 7] = np.tanh(probes["bracket_depth"] - 1) + rng.normal(scale=0.1, size=len(text))
    noise[0][:, 3] = -probes["in_quotes"]  # a negative correlation ranks by its size
    ranked = units.rank_units(noise, probes, top=3)
    assert set(ranked) == set(units.PROBES) and all(len(best) == 3 for best in ranked.values())
    assert (ranked["bracket_depth"][0].layer, ranked["bracket_depth"][0].unit) == (1, 7)
    assert ranked["bracket_depth"][0].r > 0.8
    best_quote = ranked["in_quotes"][0]
    assert (best_quote.layer, best_quote.unit) == (0, 3) and best_quote.r == pytest.approx(-1, abs=1e-3)
    assert best_quote.to_dict() == {"layer": 0, "unit": 3, "r": round(best_quote.r, 4)}
    rs = [abs(s.r) for s in ranked["line_position"]]
    assert rs == sorted(rs, reverse=True)


def test_find_units_ranks_a_real_models_units_as_rank_units_does(trained_run, play_text):
    from charrnn import checkpoint, score

    model, tokenizer = checkpoint.build_model(checkpoint.load(checkpoint.resolve(trained_run)))
    text = play_text[:600]
    ranked = units.find_units(model, tokenizer, text, layers=[0, 1], kind="cell", top=4)
    assert set(ranked) == set(units.PROBES)
    for best in ranked.values():
        assert len(best) == 4 and all(s.layer in (0, 1) and 0 <= s.unit < 64 and -1 <= s.r <= 1 for s in best)
    layers = {layer: score.activations(model, tokenizer, text, layer=layer, kind="cell").values for layer in (0, 1)}
    tokens = [(i, c) for i, c in enumerate(text)]  # the char tokenizer: one token a character
    assert ranked == units.rank_units(layers, units.token_probes(text, tokens), top=4)
