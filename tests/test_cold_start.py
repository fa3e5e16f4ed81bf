"""What a new user reads first: README command 1 (`charrnn demo`) and an unprimed sample of a folder of
documents, checked as a reader would check them. Each runs the real command in a subprocess."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from charrnn import data
from tests import corpora
from tests.conftest import SMALL, charrnn

PRINTABLE = re.compile(r"[\x20-\x7e\n\t]")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")  # identifier-like: three characters or more
LOSSES = re.compile(r"best val loss ([\d.]+) nats .*cold start ([\d.]+)")


def readable(text: str) -> float:
    """The fraction of characters that are printable ASCII, newlines or tabs."""
    return len(PRINTABLE.findall(text)) / max(1, len(text))


def known_words(text: str, corpus: str) -> float:
    """The fraction of the text's identifier-like words that the corpus has too."""
    words = WORD.findall(text)
    vocabulary = set(WORD.findall(corpus))
    return sum(w in vocabulary for w in words) / max(1, len(words))


def all_cores() -> dict[str, str]:
    """The environment of a command that may use every core, as a user's would (the tests pin one)."""
    return {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}


@pytest.mark.slow
def test_the_demo_prints_readable_python_from_its_first_character(tmp_path):
    result = charrnn("demo", "--time-budget", "30s", "--length", "400", cwd=tmp_path, env=all_cores())
    assert result.returncode == 0, result.stderr
    sample = result.stdout
    assert len(sample.strip()) >= 300
    assert readable(sample) >= 0.97, sample
    corpus = "".join(Path(f).read_text(encoding="utf-8") for f in data.stdlib_sources())
    assert known_words(sample, corpus) >= 0.5, sample
    val, cold = (float(v) for v in LOSSES.search(result.stderr).groups())
    assert cold - val <= 0.5, result.stderr  # the first characters of a module are not much harder
    (run,) = (tmp_path / "checkpoints").iterdir()
    assert run.name.startswith("stdlib-")  # named for the corpus, not its first module


@pytest.fixture(scope="module")
def article_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("articles") / "articles"
    folder.mkdir()
    for i, text in enumerate(corpora.articles(300)):
        (folder / f"{i:03d}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.slow
def test_an_unprimed_sample_opens_as_the_documents_do(article_folder, tmp_path):
    trained = charrnn(
        "train", str(article_folder), *SMALL, "--max-steps", "500", "--lr", "1e-2", "--warmup-steps", "20",
        "--eval-every", "250", "--seed", "1", "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
        cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    sampled = charrnn(
        "sample", "-c", str(tmp_path / "run"), "--temp", "1", "--length", "200", "-N", "8", "--seed", "3",
        "--format", "jsonl", cwd=tmp_path,
    )  # fmt: skip
    assert sampled.returncode == 0, sampled.stderr
    texts = [json.loads(line)["text"] for line in sampled.stdout.splitlines()]
    corpus = "".join(p.read_text() for p in article_folder.iterdir())
    titled = [t for t in texts if t.startswith("= The ")]  # the body never opens a line with "="
    assert len(titled) >= 6, texts  # documents open with a title line; a sample does too
    assert all(readable(t) >= 0.97 for t in texts), texts
    assert known_words("".join(texts), corpus) >= 0.5, texts
    evaluated = charrnn("eval", str(article_folder), "-c", str(tmp_path / "run"), "--json", cwd=tmp_path)
    scores = json.loads(evaluated.stdout)
    assert scores["cold_start_loss"] - scores["nats_per_token"] <= 0.5, scores
