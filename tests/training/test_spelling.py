"""Typo correction in front of the encoder (``training.spelling``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.artifact import ArtifactInfo
from training.predict import Predictor
from training.spelling import (
    SpellingNormaliser,
    allowed_edits,
    deletes,
    edit_distance,
    tokenizer_words,
    word_counts,
)

TRAINING = ["Where is my card?", "my card has not arrived", "I want a refund",
            "refund my order please", "track my order", "the card was declined",
            "cancel my order", "how long does delivery take"]


@pytest.fixture
def normaliser() -> SpellingNormaliser:
    return SpellingNormaliser.from_texts(TRAINING, known={"car", "cart", "weather", "paris"})


@pytest.mark.parametrize(("first", "second", "distance"), [
    ("card", "card", 0), ("carrd", "card", 1), ("crad", "card", 1), ("cxrd", "card", 1),
    ("cad", "card", 1), ("refnud", "refund", 1), ("rfnud", "refund", 2), ("", "abc", 3),
    ("abc", "", 3), ("order", "ordre", 1), ("kitten", "sitting", 3)])
def test_edit_distance_counts_swaps_as_one(first: str, second: str, distance: int) -> None:
    assert edit_distance(first, second) == distance
    assert edit_distance(second, first) == distance


@given(st.text(alphabet="abcde", max_size=7), st.text(alphabet="abcde", max_size=7))
def test_edit_distance_is_a_bounded_symmetric_count(first: str, second: str) -> None:
    distance = edit_distance(first, second)
    assert distance == edit_distance(second, first)
    assert abs(len(first) - len(second)) <= distance <= max(len(first), len(second))
    assert (distance == 0) == (first == second)


def test_deletes_reach_the_given_depth() -> None:
    assert deletes("abc", 1) == {"abc", "bc", "ac", "ab"}
    assert "a" in deletes("abc", 2) and "" not in deletes("abc", 2)


@pytest.mark.parametrize(("typo", "fixed"), [
    ("carrd", "card"), ("crad", "card"), ("refnud", "refund"), ("ordr", "order"),
    ("delivrey", "delivery"), ("delviery", "delivery"), ("arived", "arrived")])
def test_typos_become_training_words(normaliser: SpellingNormaliser, typo: str,
                                     fixed: str) -> None:
    assert normaliser.correct(typo) == fixed


@pytest.mark.parametrize("word", [
    "car",      # a real word of the tokenizer: never changed, even one edit from "card"
    "cart",     # likewise
    "weather",  # unknown to the training data, known to the tokenizer
    "cxd",      # under MIN_LENGTH letters: too short to correct safely
    "qwpoe",    # gibberish: no training word within one edit
    "rfnud",    # two edits in a word shorter than LONG_WORD
])
def test_known_short_and_distant_words_stay(normaliser: SpellingNormaliser, word: str) -> None:
    assert normaliser.correct(word) == word


def test_long_words_may_have_two_edits(normaliser: SpellingNormaliser) -> None:
    assert allowed_edits("delivery") == 2
    assert normaliser.correct("dleivrey") == "delivery"


def test_a_tie_goes_to_the_more_frequent_word() -> None:
    normaliser = SpellingNormaliser({"cord": 1, "card": 5})
    assert normaliser.correct("caord") == "card"


def test_text_keeps_everything_but_the_corrected_words(normaliser: SpellingNormaliser) -> None:
    assert normaliser.normalise("Wheres my CARRD?? Refnud it, order 48213!") \
        == "Where my CARD?? Refund it, order 48213!"
    assert normaliser.normalise("我的订单48213到哪了？") == "我的订单48213到哪了？"
    assert normaliser.normalise("") == ""


def test_json_round_trip_keeps_the_corrections(normaliser: SpellingNormaliser) -> None:
    data = json.loads(json.dumps(normaliser.to_json()))
    again = SpellingNormaliser.from_json(data, known={"car"})
    assert data["words"]["card"] == 3
    assert again.correct("carrd") == "card" and again.correct("car") == "car"


def test_word_counts_are_lower_cased() -> None:
    assert word_counts(["Card card", "CARD!"]) == {"card": 3}


class Vocabulary:
    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def get_vocab(self) -> dict[str, int]:
        return {piece: i for i, piece in enumerate(self.pieces)}


def test_tokenizer_words_are_whole_words_only() -> None:
    pieces = ["[CLS]", "car", "##d", "##ing", "\u2581Hello", "\u2581订单", "a", "ab1", "world"]
    assert tokenizer_words(Vocabulary(pieces)) == {"car", "hello", "world"}


def test_an_artifact_carries_its_training_words(tiny_artifact: Path) -> None:
    info = ArtifactInfo.read(tiny_artifact)
    predictor = Predictor.load(tiny_artifact, device="cpu")

    assert info.spelling["words"]
    assert predictor.spelling is not None
    word = max(info.spelling["words"], key=lambda w: (len(w), w))  # a long training word
    typo = word[0] + word[2] + word[1] + word[3:]  # two neighbours swapped
    assert predictor.spelling.normalise(typo) == word
    assert predictor.predict([typo])[0].label == predictor.predict([word])[0].label


def test_spelling_correction_can_be_turned_off(train_tiny) -> None:
    result = train_tiny(spelling_correction=False)
    assert result.info.spelling == {}
    assert Predictor.load(result.output_dir, device="cpu").spelling is None
