from __future__ import annotations

import random

import numpy as np
import pytest

from charrnn.errors import CharRNNError
from charrnn.novelty import NS, SubstringHashes, novelty, present, report


def _brute_longest(sample: str, corpus: str) -> int:
    return max(n for n in range(len(sample) + 1) for i in range(len(sample) - n + 1) if sample[i : i + n] in corpus)


def test_matches_a_brute_force_search():
    rng = random.Random(5)
    for _ in range(150):
        corpus = "".join(rng.choice("ab\n") for _ in range(rng.randint(1, 80)))
        sample = "".join(rng.choice("abc") for _ in range(rng.randint(1, 40)))
        cuts = sorted(rng.sample(range(len(corpus) + 1), 2))
        chunks = [corpus[: cuts[0]], corpus[cuts[0] : cuts[1]], corpus[cuts[1] :]]
        result = novelty(sample, chunks)
        assert result.longest == _brute_longest(sample, corpus) and result.longest_text in corpus
        for n, (novel, total) in result.ngrams.items():
            grams = [sample[i : i + n] for i in range(len(sample) - n + 1)]
            assert (novel, total) == (sum(g not in corpus for g in grams), len(grams))


def test_a_copied_passage_and_new_text(play_text):
    corpus = play_text
    copied = corpus[200_000:200_400]
    fresh = "Zyxwvut qrstu, mnopq! " * 20
    result = novelty(copied + fresh, [corpus[i : i + 70_000] for i in range(0, len(corpus), 70_000)])
    assert result.longest_text.startswith(copied) and result.longest >= 400
    novel, total = result.ngrams[50]
    assert total == len(copied + fresh) - 49 and novel == len(fresh)  # every window that reaches into the new text
    assert result.corpus_chars == len(corpus)
    text = report(result)
    assert "longest substring copied from the corpus" in text and all(f"{n:>4}" in text for n in NS)


def test_hashes_agree_across_texts_and_positions():
    a, b = SubstringHashes("xxhello worldyy"), SubstringHashes("hello world")
    assert a.of_length(11)[2] == b.of_length(11)[0]
    assert len(set(SubstringHashes("abcdefgh").of_length(3).tolist())) == 6
    assert present(np.array([1, 2, 2, 9], dtype=np.uint64), np.array([2, 3, 9], dtype=np.uint64)).tolist() == [
        False,
        True,
        True,
        True,
    ]


def test_empty_inputs_are_errors():
    with pytest.raises(CharRNNError, match="sample is empty"):
        novelty("", ["abc"])
    with pytest.raises(CharRNNError, match="corpus is empty"):
        novelty("abc", [])
