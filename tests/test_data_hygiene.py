"""The held-out evaluation sets stay held out and frozen.

The sentiment test set, the intensity set, the assistant's NLU test set and the
unknown-input set were written before training (benchmarks/data/) and are never
tuned on: their hashes are fixed here. None of their messages of three words or
more, and none of the messages of the understanding issue, may appear in the
training data of the same task. Shorter ones ("bye", "yes please") are the
language's fixed phrases, which independent writers share and an assistant must
be trained on; the benchmarks report their figures with and without them.

The sentiment model shipped in assets/sentiment was trained before this check
existed, on data that shares ``SHIPPED_SENTIMENT_OVERLAP`` with the evaluation
sets (independently written, identical by chance); ``benchmarks/sentiment_v2.py``
reports its test figures on the messages it never saw as well.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from tests.test_understanding import INTENTS, SENTIMENT
from training.data import load_rasa_nlu, normalise_text

ROOT = Path(__file__).resolve().parents[1]
FROZEN = {
    "benchmarks/data/sentiment_test.csv":
        "0b5222d241d2a74fb8d1e8e95b312fcafd0309f84c66e877d7ba9953dbaaca30",
    "benchmarks/data/sentiment_intensity.csv":
        "1b518790ba0975294224ce939ba869aea3f61ac62b001b1ee59c942319c97b2a",
    "benchmarks/data/assistant_nlu_test.yml":
        "a57847a1b37ff3e409a0d94c0421b72d4a6e1834177b2439c43b49972b009072",
    "benchmarks/data/unknown_input_test.csv":
        "b16bae93bce111725d9c7fc3f3453a6d367ea38c34d088028064a6bc36ec1df0",
}


FROZEN_NLU = "benchmarks/data/assistant_nlu_test.yml"
SHIPPED_SENTIMENT_OVERLAP = {
    "can i pay with paypal?", "do you ship internationally?", "five stars from me.",
    "is there a phone number i can call?", "let me check", "my email is jane.doe@example.com",
    "no that's everything", "perfect, exactly what i needed.", "thank you so much",
    "the blue one", "the second one", "the zip broke the first time i used it.",
    "two of the plates were chipped.", "where can i find my order history?",
    "where is my order", "will definitely order again.", "do you offer gift wrapping?",
    "this is daylight robbery.", "what is wrong with you people",
}


def key(text: str) -> str:
    return normalise_text(text).lower()


def long(texts: set[str]) -> set[str]:
    """The messages of three words or more."""
    return {text for text in texts if len(text.split()) >= 3}


def csv_texts(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {key(row["text"]) for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def intent_texts() -> set[str]:
    return {key(text) for text in load_rasa_nlu(ROOT / "data" / "nlu.yml").texts}


@pytest.fixture(scope="module")
def sentiment_texts() -> set[str]:
    return csv_texts(ROOT / "data" / "sentiment" / "customer_service.csv")


@pytest.mark.parametrize(("path", "digest"), sorted(FROZEN.items()))
def test_evaluation_sets_are_frozen(path: str, digest: str) -> None:
    assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == digest, (
        f"{path} changed after the recorded results were measured on it")


@pytest.mark.parametrize("path", ["benchmarks/data/sentiment_test.csv",
                                  "benchmarks/data/sentiment_intensity.csv"])
def test_no_sentiment_test_message_is_trained_on(sentiment_texts: set[str], path: str) -> None:
    overlap = long(csv_texts(ROOT / path) & sentiment_texts) - SHIPPED_SENTIMENT_OVERLAP

    assert not overlap, sorted(overlap)[:10]


def test_no_heldout_intent_example_is_trained_on(intent_texts: set[str]) -> None:
    heldout = {key(text) for text in load_rasa_nlu(ROOT / FROZEN_NLU).texts}
    unknown = csv_texts(ROOT / "benchmarks" / "data" / "unknown_input_test.csv")

    assert not long(heldout & intent_texts), sorted(long(heldout & intent_texts))[:10]
    assert not long(unknown & intent_texts), sorted(long(unknown & intent_texts))[:10]


def test_the_issue_messages_are_not_trained_on(intent_texts: set[str],
                                               sentiment_texts: set[str]) -> None:
    sentiment = [case.values[0] if hasattr(case, "values") else case[0] for case in SENTIMENT]
    quoted = {key(text) for text in sentiment + [text for text, _ in INTENTS]}

    assert not quoted & (intent_texts | sentiment_texts)
