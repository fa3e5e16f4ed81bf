"""`charrnn score` end to end, in a subprocess (and in-process where the process is not what is checked)."""

from __future__ import annotations

import json
import random

import pytest

from tests.conftest import charrnn, charrnn_here


@pytest.fixture(scope="module")
def lines(corpus_file) -> list[str]:
    """A line of the play and a line of random letters the model has seen."""
    text = corpus_file.read_text()
    play = max(text[:3000].splitlines(), key=len)
    letters = sorted({c for c in text if c.isalpha()})
    noise = "".join(random.Random(3).choice(letters) for _ in range(len(play)))
    return [noise, play]


def test_per_line_ranks_a_corpus_line_above_random_letters(trained_run, lines, tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n")
    result = charrnn("score", str(path), "--per-line", "-c", str(trained_run), "--precision", "fp32", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2]
    assert rows[0]["characters"] == len(lines[0]) + 1
    assert rows[1]["bits_per_char"] < rows[0]["bits_per_char"]


def test_per_token_from_stdin(trained_run, lines, tmp_path):
    text = lines[1][:20]
    result = charrnn("score", "-", "--top-k", "3", "-c", str(trained_run), cwd=tmp_path, stdin=text)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert "".join(r["text"] for r in rows) == text
    assert all(len(r["top"]) == 3 and r["logprob"] <= 0 for r in rows)
    summary = charrnn_here("score", "-", "--summary", "-c", str(trained_run), cwd=tmp_path, stdin=text)
    total = json.loads(summary.stdout)
    assert total["characters"] == len(text)
    assert total["nats"] == pytest.approx(-sum(r["logprob"] for r in rows), rel=1e-5)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["missing.txt"], None, "cannot read missing.txt"),
        (["-"], "", "empty"),
        (["-", "--top-k", "-1"], "ab", "--top-k"),
        (["-", "--per-line", "--summary"], "ab", "--per-line"),
    ],
)
def test_bad_input_is_one_line(trained_run, tmp_path, args, stdin, message):
    run = charrnn if args == ["missing.txt"] else charrnn_here  # one through a real process
    result = run("score", *args, "-c", str(trained_run), cwd=tmp_path, stdin=stdin)
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
