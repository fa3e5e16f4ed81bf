"""Text the tests make for themselves: seeded, the same on every machine, nothing read from outside.

`play()` writes a script in the shape of a stage play (speaker names, lines of verse-like
sentences from a small grammar, blank lines between speeches): structure a small model learns
in seconds, so "the loss falls" and "the sample looks like the corpus" are real checks.
`han_lines()` writes lines of Chinese words drawn from a Zipf-like distribution over ~2,000
CJK ideographs: more distinct characters than a 500-piece SentencePiece vocabulary can hold,
as in real Chinese text. `names()` writes one invented name per line, built from syllables: a
corpus of independent items for `--items lines`. `python -m tests.corpora names > names.txt` writes it.
`articles()` writes short documents that each open with a title line: a folder of files for the
document starts (a sample with no prime must open the way they do).
"""

from __future__ import annotations

import random
import sys

SPEAKERS = ["ROMEO", "JULIET", "NURSE", "FRIAR", "KING", "QUEEN", "DUKE", "CAPTAIN", "VIOLA", "BIANCA", "XAVIER"]
DETERMINERS = ["the", "a", "my", "thy", "our", "this", "that", "no"]
ADJECTIVES = ["gentle", "quiet", "bright", "proud", "weary", "sweet", "jealous", "brave", "vexed", "zealous", "old"]
NOUNS = ["king", "heart", "night", "sword", "crown", "love", "queen", "friend", "moon", "jest", "vow", "axe", "fool"]
VERBS = ["loves", "fears", "keeps", "breaks", "wakes", "calls", "seeks", "holds", "yields", "mocks", "jokes", "quits"]
ENDINGS = [".", ".", ",", "!", "?", ";"]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(DETERMINERS)]
    if rng.random() < 0.5:
        words.append(rng.choice(ADJECTIVES))
    words += [rng.choice(NOUNS), rng.choice(VERBS), rng.choice(DETERMINERS), rng.choice(NOUNS)]
    text = " ".join(words) + rng.choice(ENDINGS)
    return text[0].upper() + text[1:]


def play(chars: int = 100_000, seed: int = 0) -> str:
    """A stage play of about `chars` characters (exactly that many, cut at the end)."""
    rng = random.Random(seed)
    speeches = []
    size = 0
    while size < chars:
        lines = [" ".join(_sentence(rng) for _ in range(rng.randint(1, 2))) for _ in range(rng.randint(1, 4))]
        speech = f"{rng.choice(SPEAKERS)}:\n" + "\n".join(lines) + "\n\n"
        speeches.append(speech)
        size += len(speech)
    return "".join(speeches)[:chars]


def han_lines(chars: int = 40_000, seed: int = 0, alphabet: int = 2000) -> str:
    """Lines of Chinese 'words' (1-3 ideographs), with a comma or full stop now and then."""
    rng = random.Random(seed)
    ideographs = [chr(0x4E00 + i * 7) for i in range(alphabet)]  # spread over U+4E00..U+848A, all assigned
    weights = [1 / (rank + 1) for rank in range(alphabet)]  # Zipf: a few characters are very common
    words = ["".join(rng.choices(ideographs, weights, k=rng.randint(1, 3))) for _ in range(3000)]
    word_weights = [1 / (rank + 1) ** 0.8 for rank in range(len(words))]
    lines, size = [], 0
    while size < chars:
        line = "".join(rng.choices(words, word_weights, k=rng.randint(4, 10)))
        line += rng.choice(["", "", "，", "。"])
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)[:chars]


ONSETS = ["", "b", "br", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "st", "t", "th", "v", "z"]
VOWELS = ["a", "e", "i", "o", "u", "ae", "ia", "ou", "y"]
CODAS = ["", "", "", "n", "r", "l", "s", "th", "m", "nd"]
FINALS = ["a", "o", "en", "ia", "us", "el", "ir", "wyn", "ette", "ard"]


def names(count: int = 3000, seed: int = 0) -> str:
    """`count` distinct names, one per line: 1-2 syllables (onset, vowel, coda) and a final, capitalised."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        syllables = [rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(rng.randint(1, 2))]
        name = "".join(syllables) + rng.choice(FINALS)
        found.setdefault(name.capitalize(), None)
    return "".join(f"{name}\n" for name in found)


def articles(count: int = 200, chars: int = 500, seed: int = 0) -> list[str]:
    """`count` short documents, each a title line ("= The Gentle King =") over lower-case prose of about
    `chars` characters: a folder of files whose starts look like nothing inside them."""
    rng = random.Random(seed)
    docs = []
    for _ in range(count):
        title = f"= The {rng.choice(ADJECTIVES).capitalize()} {rng.choice(NOUNS).capitalize()} =\n\n"
        lines, size = [], 0
        while size < chars:
            line = " ".join(_sentence(rng).lower() for _ in range(rng.randint(1, 3)))
            lines.append(line)
            size += len(line) + 1
        docs.append(title + "\n".join(lines) + "\n")
    return docs


if __name__ == "__main__":  # python -m tests.corpora names|play|han > FILE
    sys.stdout.write({"names": names, "play": play, "han": han_lines}[sys.argv[1]]())
