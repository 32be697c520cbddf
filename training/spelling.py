"""Typo correction in front of the encoder: unknown words mapped onto the training words.

A word-piece encoder splits a misspelt word into pieces it rarely saw in training
("carrd" -> "carr", "##d"), so one typo can move a message to another intent.
Training with typos (``training.augment``) teaches the model some of them; this
corrects the rest before the model sees them, the way a search box does:

- the *dictionary* is every word of the training texts plus every whole word of the
  tokenizer's vocabulary: a word in it is never changed ("car" stays "car");
- an unknown word of at least ``MIN_LENGTH`` letters becomes the training word
  closest to it, within one edit (two for words of ``LONG_WORD`` letters or more;
  an edit is an insertion, deletion, substitution or swap of neighbours), the most
  frequent one on a tie; with none that close it stays as it is.

Only words of the training texts are targets, so a correction can only move a
message towards the assistant's own vocabulary. Lookups use a symmetric-delete
index (SymSpell's idea): a fraction of a millisecond per message.

The word counts travel in the artifact (``ArtifactInfo.spelling``); the
tokenizer's words are read from the tokenizer when the artifact is loaded.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

WORD = re.compile(r"[A-Za-z]+")
MIN_LENGTH = 4
LONG_WORD = 7
MAX_EDITS = 2
# Word-piece markers of whole words (SentencePiece, byte-level BPE); "##" marks a
# continuation piece, which is not a word.
_WORD_START_MARKERS = ("\u2581", "\u0120")


def word_counts(texts: Iterable[str]) -> dict[str, int]:
    """How often each lower-cased word occurs in ``texts``."""
    return dict(Counter(word.lower() for text in texts for word in WORD.findall(text)))


def tokenizer_words(tokenizer: Any) -> set[str]:
    """The whole words of a tokenizer's vocabulary, lower-cased."""
    words = set()
    for piece in tokenizer.get_vocab():
        word = piece.lstrip("".join(_WORD_START_MARKERS))
        if len(word) > 1 and word.isascii() and word.isalpha() and not piece.startswith("##"):
            words.add(word.lower())
    return words


def edit_distance(first: str, second: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours between two words
    (optimal string alignment distance)."""
    previous2: list[int] = []
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, 1):
        current = [i] + [0] * len(second)
        for j, b in enumerate(second, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b))
            if i > 1 and j > 1 and a == second[j - 2] and first[i - 2] == b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def deletes(word: str, depth: int) -> set[str]:
    """``word`` and every string made from it by deleting up to ``depth`` letters."""
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {item[:i] + item[i + 1:] for item in frontier for i in range(len(item))}
        found |= frontier
    return found


def allowed_edits(word: str) -> int:
    """Edits a correction of ``word`` may make: 0 below ``MIN_LENGTH`` letters."""
    if len(word) < MIN_LENGTH:
        return 0
    return 2 if len(word) >= LONG_WORD else 1


def same_case(corrected: str, original: str) -> str:
    """``corrected`` written in the case style of ``original``."""
    if original.isupper() and len(original) > 1:
        return corrected.upper()
    if original[:1].isupper():
        return corrected.capitalize()
    return corrected


class SpellingNormaliser:
    """Corrects unknown words of a text towards the training words (module docstring).

    Args:
        counts: Training word counts (``word_counts``).
        known: Further words never corrected, e.g. ``tokenizer_words``.
    """

    def __init__(self, counts: Mapping[str, int], known: Iterable[str] = ()) -> None:
        self.counts = {str(word): int(count) for word, count in counts.items()}
        self.dictionary = set(self.counts) | set(known)
        self._index: dict[str, set[str]] = defaultdict(set)
        for word in self.counts:
            if len(word) >= MIN_LENGTH - 1:  # a target may be one letter shorter
                for variant in deletes(word, MAX_EDITS):
                    self._index[variant].add(word)
        self._memo: dict[str, str] = {}

    @classmethod
    def from_texts(cls, texts: Iterable[str], known: Iterable[str] = ()) -> SpellingNormaliser:
        """A normaliser over the words of ``texts``."""
        return cls(word_counts(texts), known)

    def to_json(self) -> dict[str, Any]:
        """What the artifact keeps: the training word counts."""
        return {"words": dict(sorted(self.counts.items()))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], known: Iterable[str] = ()) -> SpellingNormaliser:
        """The normaliser ``to_json`` described."""
        return cls(data.get("words", {}), known)

    def correct(self, word: str) -> str:
        """``word``, or the training word it is a typo of (lower-cased)."""
        lowered = word.lower()
        if lowered in self.dictionary:
            return lowered
        cached = self._memo.get(lowered)
        if cached is not None:
            return cached
        edits = allowed_edits(lowered)
        best: tuple[int, int, str] | None = None
        if edits:
            candidates = set().union(*(self._index.get(v, ()) for v in deletes(lowered, edits)))
            for candidate in candidates:
                distance = edit_distance(lowered, candidate)
                if distance <= edits:
                    key = (distance, -self.counts[candidate], candidate)
                    if best is None or key < best:
                        best = key
        result = best[2] if best else lowered
        if len(self._memo) < 100_000:
            self._memo[lowered] = result
        return result

    def normalise(self, text: str) -> str:
        """``text`` with its unknown words corrected; everything else untouched."""
        def replace(match: re.Match[str]) -> str:
            word = match.group(0)
            corrected = self.correct(word)
            return word if corrected == word.lower() else same_case(corrected, word)

        return WORD.sub(replace, text)
