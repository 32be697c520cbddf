"""Typo augmentation: seeded, digit-safe, first letters kept, plausible keys only."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from training.augment import NEIGHBOURS, _typo_in_word, add_typos, typo_copy

TEXTS = ["where is my order 48213", "I want a refund for order 77001 please",
         "hello there", "track order A-778 now", "where's my parcel?"]


def _digits(text: str) -> list[str]:
    return [char for char in text if char.isdigit()]


def _has_doubled_letter(text: str) -> bool:
    return any(a == b and a.isalpha() for a, b in zip(text, text[1:]))


def test_neighbours_are_symmetric_qwerty_keys() -> None:
    assert set(NEIGHBOURS) == set("abcdefghijklmnopqrstuvwxyz")
    assert NEIGHBOURS["q"] == "asw"
    assert {"q", "w", "s", "z"} <= set(NEIGHBOURS["a"])
    assert {"f", "h", "t", "y", "v", "b"} <= set(NEIGHBOURS["g"])
    assert all(len(near) <= 8 for near in NEIGHBOURS.values())
    for char, near in NEIGHBOURS.items():
        assert char not in near
        for other in near:
            assert char in NEIGHBOURS[other], (char, other)


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_same_seed_gives_the_same_copy(seed: int) -> None:
    assert typo_copy(TEXTS, seed=seed) == typo_copy(TEXTS, seed=seed)


def test_other_seeds_give_other_copies() -> None:
    copies = {tuple(typo_copy(TEXTS, seed=seed)) for seed in range(5)}

    assert len(copies) > 1


def test_typo_copy_keeps_order_and_length() -> None:
    copy = typo_copy(TEXTS, seed=3)

    assert len(copy) == len(TEXTS)
    for clean, noisy in zip(TEXTS, copy):
        assert noisy.split(" ")[-1][:1] == clean.split(" ")[-1][:1]


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("text", ["where is my order 48213", "order 48213 refund 90210 now",
                                  "48213", "ord 4821 x 3"])
def test_digits_never_change(text: str, seed: int) -> None:
    noisy = add_typos(text, random.Random(seed), word_rate=1.0)

    assert _digits(noisy) == _digits(text)
    assert re.findall(r"\d+", noisy) == re.findall(r"\d+", text)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("text", ["where is my order 48213", "refund please", "hey",
                                  "i want my money back"])
def test_a_word_of_three_letters_or_more_always_changes(text: str, seed: int) -> None:
    assert add_typos(text, random.Random(seed), word_rate=0.0) != text


def test_a_swap_of_equal_letters_is_the_only_way_to_stay_unchanged() -> None:
    """The docstring's one exception: "all" can stay "all" (swap of the two l's)."""
    unchanged = [seed for seed in range(200) if add_typos("all", random.Random(seed)) == "all"]
    changed_words = [seed for seed in range(200)
                     if add_typos("parcel", random.Random(seed)) == "parcel"]

    assert 0 < len(unchanged) < 100
    assert changed_words == []


@pytest.mark.parametrize("text", ["", "ok", "hi 48213", "a b c", "12 34 56", "?!", "  ",
                                  "ab-1 x2"])
def test_texts_without_a_long_word_are_unchanged(text: str) -> None:
    for seed in range(20):
        assert add_typos(text, random.Random(seed), word_rate=1.0) == text


@pytest.mark.parametrize("word", ["where", "order", "Refund", "please", "ab1c", "tracking"])
def test_typo_keeps_the_first_letter(word: str) -> None:
    for seed in range(100):
        assert _typo_in_word(word, random.Random(seed))[0] == word[0]


@pytest.mark.parametrize("word", ["ok", "hi", "a", "", "123", "48213", "1-2"])
def test_short_or_letterless_words_are_left_alone(word: str) -> None:
    assert _typo_in_word(word, random.Random(0)) == word


def _classify(clean: str, noisy: str) -> str:
    """Which operation turned ``clean`` into ``noisy`` (one typo)."""
    if len(noisy) == len(clean) - 1:
        return "drop"
    if len(noisy) == len(clean) + 1:
        return "double"
    diffs = [i for i, (a, b) in enumerate(zip(clean, noisy)) if a != b]
    if len(diffs) == 1:
        return "neighbour"
    if len(diffs) == 2 and diffs[1] == diffs[0] + 1:
        return "swap"
    return "unknown"


@pytest.mark.parametrize("word", ["where", "order", "REFUND", "Parcel", "tracking"])
def test_every_typo_is_one_of_the_four_operations(word: str) -> None:
    seen = set()
    for seed in range(300):
        noisy = _typo_in_word(word, random.Random(seed))
        operation = _classify(word, noisy)
        seen.add(operation)
        if operation == "drop":
            assert any(word[:i] + word[i + 1:] == noisy for i in range(1, len(word)))
        elif operation == "double":
            assert any(word[:i] + word[i] + word[i:] == noisy for i in range(1, len(word)))
        elif operation == "neighbour":
            [i] = [i for i, (a, b) in enumerate(zip(word, noisy)) if a != b]
            assert noisy[i].lower() in NEIGHBOURS[word[i].lower()]
            assert noisy[i].isupper() == word[i].isupper()
        elif operation == "swap":
            i = next(i for i, (a, b) in enumerate(zip(word, noisy)) if a != b)
            assert noisy[i:i + 2] == word[i + 1] + word[i]
        else:
            pytest.fail(f"{word!r} -> {noisy!r} is no single typo")
    assert seen == {"drop", "double", "neighbour", "swap"}


def test_apostrophes_may_be_dropped_but_nothing_else_is_removed() -> None:
    outputs = {add_typos("where's my order", random.Random(seed), word_rate=0.5)
               for seed in range(60)}

    assert any("'" not in output for output in outputs)
    assert any("'" in output for output in outputs)
    assert all(len(output.split(" ")) == 3 for output in outputs)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=120), seed=st.integers(0, 2**32 - 1),
       word_rate=st.floats(0.0, 1.0))
def test_any_text_keeps_its_digits_and_word_count(text: str, seed: int,
                                                  word_rate: float) -> None:
    noisy = add_typos(text, random.Random(seed), word_rate=word_rate)

    assert isinstance(noisy, str)
    assert _digits(noisy) == _digits(text)
    assert len(noisy.split(" ")) == len(text.split(" "))


@settings(max_examples=100, deadline=None)
@given(text=st.text(st.characters(codec="ascii"), max_size=60), seed=st.integers(0, 10**6))
def test_any_text_with_a_long_word_and_no_doubled_letter_changes(text: str, seed: int) -> None:
    assume(any(sum(c.isalpha() for c in word) >= 3 for word in text.split(" ")))
    assume(not _has_doubled_letter(text))

    assert add_typos(text, random.Random(seed)) != text
