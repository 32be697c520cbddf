"""The served assistant on the messages of the understanding issue, through
`/model/parse` and the REST channel: sentiment that reads complaints, sarcasm and
fillers right, intents that say "I don't know" instead of guessing, other
languages, and the way out after several messages not understood.

None of these messages is in the training data (tests/test_data_hygiene.py checks).
Slow: shares the trained assistant and its servers with tests/test_assistant.py.
"""

from __future__ import annotations

import json

import pytest

from tests.test_assistant import chat, parse, query

pytestmark = pytest.mark.slow

# (message, expected sentiment label)
SENTIMENT = [
    ("your checkout charged me twice for the same order!!", "negative"),
    ("the product arrived broken and the box was soaked", "negative"),
    ("thanks for nothing, the replacement is broken too", "negative"),
    ("I forgot my password and the reset email never comes", "neutral"),
    ("that's all, bye", "neutral"),
    ("yep that's the one", "neutral"),
]

# (message, expected intent); "where is my order" is a status or a tracking question:
# both start the order form with the number and answer where the order is.
ORDER = ("order_status", "track_delivery")
INTENTS = [
    ("hey, any news on order 48213?", ORDER),
    ("wheres my ordr 48213", ORDER),
    ("I forgot my password and the reset email never comes", "account_help"),
    ("that's all, bye", "goodbye"),
    ("yep that's the one", "affirm"),
    ("if I don't like it can I get my money back after a month?", "faq"),
]


@pytest.mark.parametrize(("text", "label"), SENTIMENT)
def test_sentiment_reads_real_customers(served: dict, text: str, label: str) -> None:
    sentiment = parse(served, text)["sentiment"]

    assert sentiment["label"] == label, sentiment
    assert 0.0 <= sentiment["intensity"] <= 1.0
    assert -1.0 <= sentiment["score"] <= 1.0


def test_intensity_separates_fury_from_annoyance(served: dict) -> None:
    def intensity(text: str) -> float:
        return parse(served, text)["sentiment"]["intensity"]

    furious = intensity("THIS IS THE THIRD TIME YOU LOST MY PARCEL. I WANT MY MONEY BACK NOW!!!")
    annoyed = intensity("a bit disappointed the parcel is a day late")
    neutral = intensity("can you tell me when my parcel arrives?")

    assert furious > annoyed > neutral


@pytest.mark.parametrize(("text", "intent"), INTENTS)
def test_intents_of_casual_and_misspelt_messages(served: dict, text: str, intent: str) -> None:
    parsed = parse(served, text)

    expected = intent if isinstance(intent, tuple) else (intent,)
    assert parsed["intent"]["name"] in expected, parsed["intent_ranking"][:3]
    assert parsed["unknown_input"]["reason"] == ""


def test_order_number_inside_a_misspelt_message_is_extracted(served: dict) -> None:
    parsed = parse(served, "wheres my ordr 48213")

    assert [(e["entity"], e["value"]) for e in parsed["entities"]] == [("order_id", "48213")]


def test_a_language_the_assistant_does_not_serve_gets_no_guessed_intent(served: dict) -> None:
    parsed = parse(served, "¿dónde está mi pedido?")

    assert parsed["intent"]["name"] == "nlu_fallback"
    assert parsed["unknown_input"]["reason"] == "other_language"
    assert parsed["language"]["supported"] is False


def test_a_chinese_order_question_is_understood_with_its_number(served: dict) -> None:
    parsed = parse(served, "我的订单48213到哪了？")

    assert parsed["intent"]["name"] == "order_status", parsed["intent_ranking"][:3]
    assert ("order_id", "48213") in [(e["entity"], e["value"]) for e in parsed["entities"]]
    assert parsed["language"]["code"] == "zh" and parsed["language"]["supported"] is True


def test_keyboard_mash_reaches_the_fallback(served: dict) -> None:
    parsed = parse(served, "asdkj qwpoe")

    assert parsed["intent"]["name"] == "nlu_fallback", parsed["unknown_input"]


def test_return_in_chinese_is_not_answered_goodbye(served: dict) -> None:
    [answer] = chat(served, "zh-return-test", "我要退货")

    assert "订单号" in answer and "Goodbye" not in answer  # asked for the order, in Chinese


def test_personal_policy_question_is_answered_from_the_faq(served: dict) -> None:
    [answer] = chat(served, "faq-situation-test",
                    "if I don't like it can I get my money back after a month?")

    assert "30 days" in answer, answer


def test_unknown_input_offers_a_human_then_hands_over(served: dict) -> None:
    sender = "unknown-input-test"
    first, second, third = chat(served, sender, "what's the weather in paris tomorrow?",
                                "who won the football last night?", "asdkj qwpoe")

    assert "can only help with orders" in first
    assert "talk to a human colleague" in second
    assert "bring in a colleague" in third and "ticket" in third
    [(reason,)] = query(served["shop"], "SELECT reason FROM tickets WHERE sender_id = ?",
                        f"rest:{sender}")
    assert reason == "unknown_input"


def test_one_furious_message_escalates_at_once(served: dict) -> None:
    sender = "furious-test"
    [answer] = chat(served, sender, "THIS IS THE THIRD TIME YOU LOST MY PARCEL. "
                                    "I WANT MY MONEY BACK NOW, NEVER SHOPPING HERE AGAIN!!!")

    assert "ticket" in answer
    [(reason, priority, history)] = query(
        served["shop"], "SELECT reason, priority, sentiment_history FROM tickets "
        "WHERE sender_id = ?", f"rest:{sender}")
    assert (reason, priority) == ("strongly_negative", "urgent")
    assert json.loads(history)[-1]["intensity"] >= 0.5
