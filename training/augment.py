"""Character-level noise: the typos real customers make.

Used two ways with different seeds: as training augmentation (each example is
perturbed afresh with probability ``TrainArguments.typo_augmentation`` every
time it is drawn), and to build a seeded typo-perturbed copy of a test set
that measures robustness (``benchmarks/intent_robustness.py``).

The operations are the common ones in typed chat: a neighbouring key hit
instead of the right one, a letter dropped, doubled or swapped with the next,
and apostrophes dropped ("wheres", "cant"). Digits are left alone, so order
numbers stay intact.

Pure Python: no torch, cheap to import and test.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

# QWERTY neighbours of each letter: the keys a finger slips onto, on a plain
# grid (rows not staggered), so "x" counts as a neighbour of "a".
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _char in enumerate(_row):
        near = set()
        for _dr in (-1, 0, 1):
            if 0 <= _r + _dr < len(_ROWS):
                other = _ROWS[_r + _dr]
                for _dc in (-1, 0, 1):
                    if 0 <= _c + _dc < len(other) and (_dr, _dc) != (0, 0):
                        near.add(other[_c + _dc])
        NEIGHBOURS[_char] = "".join(sorted(near))

OPERATIONS = ("neighbour", "drop", "double", "swap")


def _typo_in_word(word: str, rng: random.Random) -> str:
    """One typo inside a word of at least 3 letters (first letter kept, as people do)."""
    positions = [i for i in range(1, len(word)) if word[i].isalpha()]
    if len(word) < 3 or not positions:
        return word
    i = rng.choice(positions)
    operation = rng.choice(OPERATIONS)
    char = word[i]
    if operation == "neighbour" and char.lower() in NEIGHBOURS:
        replacement = rng.choice(NEIGHBOURS[char.lower()])
        return word[:i] + (replacement.upper() if char.isupper() else replacement) + word[i + 1:]
    if operation == "drop":
        return word[:i] + word[i + 1:]
    if operation == "double":
        return word[:i] + char + word[i:]
    if operation == "swap" and i + 1 < len(word) and word[i + 1].isalpha():
        return word[:i] + word[i + 1] + char + word[i + 2:]
    return word[:i] + word[i + 1:]


def add_typos(text: str, rng: random.Random, *, word_rate: float = 0.25) -> str:
    """``text`` with typos in about ``word_rate`` of its words of 3+ letters.

    At least one word is picked when the text has any word of 3+ letters, so a
    perturbed copy of a test set almost never equals the original (a swap of two
    equal letters, as in "all", leaves a word as it was). Apostrophes are dropped
    with probability ``word_rate`` as well ("where's" -> "wheres").

    Args:
        text: The clean text.
        rng: The random source (seed it for reproducible copies).
        word_rate: Share of eligible words that get one typo.
    """
    words = text.split(" ")
    eligible = [i for i, word in enumerate(words)
                if sum(char.isalpha() for char in word) >= 3]
    if not eligible:
        return text
    chosen = [i for i in eligible if rng.random() < word_rate] or [rng.choice(eligible)]
    for i in chosen:
        words[i] = _typo_in_word(words[i], rng)
    result = " ".join(words)
    if "'" in result and rng.random() < word_rate:
        result = result.replace("'", "")
    return result


def typo_copy(texts: Sequence[str], *, seed: int, word_rate: float = 0.25) -> list[str]:
    """A seeded typo-perturbed copy of ``texts`` (same order), for robustness tests."""
    rng = random.Random(seed)
    return [add_typos(text, rng, word_rate=word_rate) for text in texts]
