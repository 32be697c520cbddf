"""The held-out evaluation sets stay held out and frozen.

The sentiment test set, the intensity set, the assistant's NLU test set and the
unknown-input set were written before training (benchmarks/data/) and are never
tuned on: their hashes are fixed here. None of their messages of three words or
more, and none of the messages of the understanding issue, may appear in the
training data of the same task: every NLU file in data/ (English nlu.yml and
Chinese nlu_zh.yml).
Shorter ones ("bye", "yes please") are the language's fixed phrases, which
independent writers share and an assistant must be trained on; the benchmarks
report their figures with and without them. Chinese is written without spaces, so
each Han character counts as a word ("在吗" two, "怎么退货" four).

The sentiment model shipped in assets/sentiment was trained before this check
existed, on data that shares ``SHIPPED_SENTIMENT_OVERLAP`` with the evaluation
sets (independently written, identical by chance); ``benchmarks/sentiment_v2.py``
reports its test figures on the messages it never saw as well.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import pytest

from tests.test_understanding import INTENTS, SENTIMENT
from training.data import load_rasa_nlu, normalise_text

ROOT = Path(__file__).resolve().parents[1]
FROZEN = {
    "benchmarks/data/intent_zh_test.csv":
        "b0ecbf4ff2f83263dad6c411ffa2aaa3bd3abf38360c9efbecdf9ea799ffd4b4",
    "benchmarks/data/sentiment_test.csv":
        "0b5222d241d2a74fb8d1e8e95b312fcafd0309f84c66e877d7ba9953dbaaca30",
    "benchmarks/data/sentiment_intensity.csv":
        "1b518790ba0975294224ce939ba869aea3f61ac62b001b1ee59c942319c97b2a",
    "benchmarks/data/assistant_nlu_test.yml":
        "a57847a1b37ff3e409a0d94c0421b72d4a6e1834177b2439c43b49972b009072",
    "benchmarks/data/unknown_input_test.csv":
        "b16bae93bce111725d9c7fc3f3453a6d367ea38c34d088028064a6bc36ec1df0",
    "benchmarks/data/sentiment_zh_test.csv":
        "7165065011c21f2b77ee19ba58f6d11a037c60b37f2f156dda6988f931c374b1",
}


FROZEN_NLU = "benchmarks/data/assistant_nlu_test.yml"
NLU_FOLDERS = ("data",)
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


# Han characters (CJK Unified Ideographs and Extension A), and the full-width
# punctuation between them, which is no word.
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_CJK_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40"
                              r"\uff5b-\uff65]")


def word_count(text: str) -> int:
    """Words: space-separated ones, and each Han character (Chinese has no spaces).

    English counts as ``len(text.split())``; "hello，在不在" is 4 words.
    """
    han = len(_HAN.findall(text))
    return han + len(_CJK_PUNCTUATION.sub(" ", _HAN.sub(" ", text)).split())


def long(texts: set[str]) -> set[str]:
    """The messages of three words or more."""
    return {text for text in texts if word_count(text) >= 3}


def csv_texts(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {key(row["text"]) for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def intent_texts() -> set[str]:
    """Every NLU example in data/, both languages (load_rasa_nlu skips stories, rules, other
    files)."""
    return {key(text) for folder in NLU_FOLDERS for text in load_rasa_nlu(ROOT / folder).texts}


@pytest.mark.parametrize(("text", "words"), [
    ("where is my order", 4), ("yes please", 2), ("  bye ", 1), ("在吗？", 2),
    ("怎么退货", 4), ("hello，在不在", 4), ("订单48213到哪了", 6)])
def test_words_are_counted_in_both_languages(text: str, words: int) -> None:
    assert word_count(text) == words


def test_every_nlu_file_in_data_is_checked(intent_texts: set[str]) -> None:
    files = [path for folder in NLU_FOLDERS for path in sorted((ROOT / folder).rglob("*.yml"))
             if "\nnlu:" in "\n" + path.read_text(encoding="utf-8")]

    assert files
    for path in files:
        assert {key(text) for text in load_rasa_nlu(path).texts} <= intent_texts, path


@pytest.fixture(scope="module")
def sentiment_texts() -> set[str]:
    """Our sentiment training rows, both languages."""
    return (csv_texts(ROOT / "data" / "sentiment" / "customer_service.csv")
            | csv_texts(ROOT / "data" / "sentiment" / "customer_service_zh.csv"))


@pytest.mark.parametrize(("path", "digest"), sorted(FROZEN.items()))
def test_evaluation_sets_are_frozen(path: str, digest: str) -> None:
    assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == digest, (
        f"{path} changed after the recorded results were measured on it")


@pytest.mark.parametrize("path", ["benchmarks/data/sentiment_test.csv",
                                  "benchmarks/data/sentiment_intensity.csv",
                                  "benchmarks/data/sentiment_zh_test.csv"])
def test_no_sentiment_test_message_is_trained_on(sentiment_texts: set[str], path: str) -> None:
    overlap = long(csv_texts(ROOT / path) & sentiment_texts) - SHIPPED_SENTIMENT_OVERLAP

    assert not overlap, sorted(overlap)[:10]


def test_no_heldout_intent_example_is_trained_on(intent_texts: set[str]) -> None:
    heldout = {key(text) for text in load_rasa_nlu(ROOT / FROZEN_NLU).texts}
    unknown = csv_texts(ROOT / "benchmarks" / "data" / "unknown_input_test.csv")

    assert not long(heldout & intent_texts), sorted(long(heldout & intent_texts))[:10]
    assert not long(unknown & intent_texts), sorted(long(unknown & intent_texts))[:10]
    chinese = csv_texts(ROOT / "benchmarks" / "data" / "intent_zh_test.csv")
    assert not long(chinese & intent_texts), sorted(long(chinese & intent_texts))[:10]


def test_the_issue_messages_are_not_trained_on(intent_texts: set[str],
                                               sentiment_texts: set[str]) -> None:
    sentiment = [case.values[0] if hasattr(case, "values") else case[0] for case in SENTIMENT]
    quoted = {key(text) for text in sentiment + [text for text, _ in INTENTS]}

    assert not quoted & (intent_texts | sentiment_texts)
