"""A Chinese corpus (generated: tests/corpora.py) end to end through the real command: train, sample, read the text."""

from __future__ import annotations

import re

import pytest

from .conftest import SMALL, charrnn, charrnn_here


def _han_share(text: str) -> float:
    """The share of Chinese characters among the visible ones."""
    visible = [c for c in text if not c.isspace()]
    return sum("\u4e00" <= c <= "\u9fff" for c in visible) / max(1, len(visible))


@pytest.mark.slow
@pytest.mark.parametrize("tokenizer", [["--tokenizer", "bpe", "--vocab-size", "500"], ["--tokenizer", "char"]])
def test_chinese_train_and_sample(tmp_path, chinese_file, tokenizer):
    lyrics = chinese_file
    run = tmp_path / "run"
    trained = charrnn(
        "train", str(lyrics), *tokenizer, *SMALL, "--max-steps", "30", "--eval-every", "30",
        "--lr", "1e-2", "--warmup-steps", "5", "--out", str(run), "--cache-dir", str(tmp_path / "cache"),
        cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert re.search(r"\d\.\d+ bits/char", trained.stderr)  # comparable across tokenizers
    sampled = charrnn_here("sample", "-c", str(run), "--length", "200", "--seed", "3", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    text = sampled.stdout
    assert len(text) == 200
    assert _han_share(text) > 0.8, text  # Chinese characters, not mojibake or escapes
    assert _han_share(lyrics.read_text(encoding="utf-8")) > 0.8  # the same measure on the corpus itself
