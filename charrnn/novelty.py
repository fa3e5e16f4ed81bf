"""Generation or recitation? How much of a sample occurs verbatim in the training corpus.

Every substring of a text gets a polynomial hash mod 2^64 over its code points, computed for
all positions at once from prefix sums: hash(i, L) = (S[i+L] - S[i]) * B^-i, where
S[j] = sum_{k<j} c_k B^k and B is odd, hence invertible mod 2^64. The corpus is streamed in
blocks (overlapping by the sample's length, so no match is cut) and each block's hashes are
looked up among the sample's with one vectorized binary search. With 64-bit hashes a false
match between natural texts is vanishingly unlikely.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from charrnn.errors import CharRNNError

NS = (5, 10, 20, 50)
BASE = 0x9E3779B97F4A7C15  # odd: invertible mod 2^64
MOD = 1 << 64
FILTER_BITS = 22  # a 4 MiB table of the needles' top hash bits screens the haystack first


def _powers(base: int, n: int) -> np.ndarray:
    """base^0 .. base^(n-1) mod 2^64 (numpy's uint64 products wrap, which is the modulus)."""
    out = np.full(n, base, dtype=np.uint64)
    out[:1] = 1
    return np.cumprod(out, dtype=np.uint64)


class SubstringHashes:
    """Hashes of every substring of one text, of any length, in O(len) memory."""

    def __init__(self, text: str) -> None:
        codes = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        codes = codes.astype(np.uint64) + np.uint64(1)
        self.size = len(codes)
        self.prefix = np.concatenate([np.zeros(1, np.uint64), np.cumsum(codes * _powers(BASE, self.size))])
        self.unshift = _powers(pow(BASE, -1, MOD), self.size)

    def of_length(self, length: int) -> np.ndarray:
        """The hash of the substring of `length` at every start position."""
        count = self.size - length + 1
        if count <= 0:
            return np.zeros(0, dtype=np.uint64)
        return (self.prefix[length:] - self.prefix[:count]) * self.unshift[:count]


def present(needles: np.ndarray, haystack: np.ndarray) -> np.ndarray:
    """For each needle, whether it occurs in haystack: sort the (small) needles, search the rest.

    Most of a corpus's substrings are not in the sample, so a table indexed by the top hash
    bits first drops nearly all of the haystack (ten times faster than searching it all).
    """
    if len(needles) == 0 or len(haystack) == 0:
        return np.zeros(len(needles), dtype=bool)
    unique, back = np.unique(needles, return_inverse=True)
    shift = np.uint64(64 - FILTER_BITS)
    table = np.zeros(1 << FILTER_BITS, dtype=bool)
    table[unique >> shift] = True
    haystack = haystack[table[haystack >> shift]]
    idx = np.searchsorted(unique, haystack)
    idx[idx == len(unique)] = 0
    hit = unique[idx] == haystack
    found = np.zeros(len(unique), dtype=bool)
    found[idx[hit]] = True
    return found[back]


@dataclass
class Novelty:
    sample_chars: int
    corpus_chars: int
    ngrams: dict[int, tuple[int, int]]  # n -> (n-grams absent from the corpus, n-grams in the sample)
    longest: int  # longest substring of the sample found verbatim in the corpus
    longest_text: str
    items: tuple[int, int] | None = None  # (the sample's lines that are whole lines of the corpus, its lines)

    def as_dict(self) -> dict:
        out = {
            "sample_chars": self.sample_chars,
            "corpus_chars": self.corpus_chars,
            "novel_fraction": {str(n): novel / total for n, (novel, total) in self.ngrams.items()},
            "longest_copied": self.longest,
            "longest_copied_text": self.longest_text,
        }
        if self.items is not None:
            out |= {"items": self.items[1], "items_in_corpus": self.items[0]}
        return out


class LineMatches:
    """Which of a sample's lines (its items; empty ones left out) occur as whole lines of a streamed corpus."""

    def __init__(self, sample: str) -> None:
        self.items = [line for line in sample.split("\n") if line]
        self.wanted, self.found = set(self.items), set()
        self.carry = ""  # a line the last chunk had not finished

    def add(self, chunk: str) -> None:
        lines = (self.carry + chunk).split("\n")
        self.carry = lines.pop()
        self.found.update(self.wanted.intersection(lines))

    def result(self) -> tuple[int, int]:
        self.add("\n")
        return sum(item in self.found for item in self.items), len(self.items)


class _Search:
    """Running state of one sample against a streamed corpus."""

    def __init__(self, sample: str) -> None:
        self.sample = sample
        self.hashes = SubstringHashes(sample)
        self.found = {n: np.zeros(max(0, len(sample) - n + 1), dtype=bool) for n in NS}
        self.longest, self.at = 0, 0

    def _match(self, block: SubstringHashes, length: int) -> int | None:
        """A sample position whose substring of `length` occurs in the block, or None."""
        hits = present(self.hashes.of_length(length), block.of_length(length))
        return int(np.argmax(hits)) if hits.any() else None

    def add_block(self, text: str) -> None:
        block = SubstringHashes(text)
        for n, found in self.found.items():
            if len(found):
                found |= present(self.hashes.of_length(n), block.of_length(n))
        # Binary search for a longer copy than any so far: a copy of length L contains copies of
        # every shorter length, so "some substring of length L occurs" is monotone in L.
        lo, hi = self.longest, min(len(self.sample), len(text)) + 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            at = self._match(block, mid)
            if at is None:
                hi = mid
            else:
                lo, self.longest, self.at = mid, mid, at

    def result(self, corpus_chars: int) -> Novelty:
        ngrams = {n: (int((~f).sum()), len(f)) for n, f in self.found.items() if len(f)}
        text = self.sample[self.at : self.at + self.longest]
        return Novelty(len(self.sample), corpus_chars, ngrams, self.longest, text)


def novelty(sample: str, corpus_chunks: Iterable[str], items: bool = False) -> Novelty:
    """Novel n-gram fractions and the longest verbatim copy of `sample` in the corpus stream; with
    items, also how many of the sample's lines are lines of the corpus (one item per line)."""
    if not sample:
        raise CharRNNError("the sample is empty")
    search = _Search(sample)
    lines = LineMatches(sample) if items else None
    overlap = len(sample) - 1  # enough that any copy of the sample's substrings lies in one block
    carry, total = "", 0
    for chunk in corpus_chunks:
        total += len(chunk)
        text = carry + chunk
        search.add_block(text)
        carry = text[len(text) - overlap :] if overlap else ""
        if lines is not None:
            lines.add(chunk)
    if total == 0:
        raise CharRNNError("the corpus is empty")
    result = search.result(total)
    if lines is not None:
        result.items = lines.result()
    return result


def report(result: Novelty) -> str:
    """A small plain-text table for the terminal."""
    lines = [f"sample {result.sample_chars:,} characters; corpus {result.corpus_chars:,} characters", ""]
    lines.append(f"{'n':>4}  {'n-grams':>9}  {'not in corpus':>13}")
    for n, (novel, total) in result.ngrams.items():
        lines.append(f"{n:>4}  {total:>9,}  {novel / total:>13.1%}")
    shown = result.longest_text if len(result.longest_text) <= 200 else result.longest_text[:200] + "..."
    lines += ["", f"longest substring copied from the corpus: {result.longest:,} characters", repr(shown)]
    if result.items is not None:
        found, total = result.items
        lines += ["", f"items (lines) found in the corpus: {found:,} of {total:,} ({found / max(1, total):.1%})"]
    return "\n".join(lines) + "\n"
