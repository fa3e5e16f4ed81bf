"""A Chinese corpus end to end through the real command: train, sample, read the text."""

from __future__ import annotations

import re

import pytest

from tests.conftest import corpus
from tests.test_cli import SMALL, charrnn


def _han_share(text: str) -> float:
    """The share of Chinese characters among the visible ones.

    U+FFFD is left out: a briefly trained subword model may emit byte-fallback pieces that do not
    form whole UTF-8 characters, and decoding shows them as U+FFFD, as it should.
    """
    visible = [c for c in text if not c.isspace() and c != "\ufffd"]
    return sum("\u4e00" <= c <= "\u9fff" for c in visible) / max(1, len(visible))


@pytest.mark.parametrize("tokenizer", [["--tokenizer", "bpe", "--vocab-size", "500"], ["--tokenizer", "char"]])
def test_chinese_lyrics_train_and_sample(tmp_path, tokenizer):
    lyrics = corpus("jaychou_lyrics.txt")
    run = tmp_path / "run"
    trained = charrnn(
        "train", str(lyrics), *tokenizer, *SMALL, "--max-steps", "30", "--eval-every", "30",
        "--lr", "1e-2", "--warmup-steps", "5", "--out", str(run), "--cache-dir", str(tmp_path / "cache"),
        cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert re.search(r"\d\.\d+ bits/char", trained.stderr)  # comparable across tokenizers
    sampled = charrnn("sample", "-c", str(run), "--length", "200", "--seed", "3", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    text = sampled.stdout
    assert len(text) == 200
    assert _han_share(text) > 0.8, text  # Chinese characters, not mojibake or escapes
    assert _han_share(lyrics.read_text(encoding="utf-8")) > 0.8  # the same measure on the corpus itself
