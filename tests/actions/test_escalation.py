from __future__ import annotations

import pytest

from actions import escalation
from actions.escalation import sentiment_history, transcript
from tests.actions.conftest import bot_event, user_event

N, U = "negative", "neutral"


def test_history_and_transcript_from_events() -> None:
    events = [
        user_event("old session", label=N, negative=0.99),
        {"event": "session_started"},
        user_event("where is my order", intent="order_status"),
        bot_event("What is your order number?"),
        {"event": "action", "name": "order_form"},
        user_event("this is awful", intent="deny", label=N, negative=0.9),
        {"event": "user", "text": "no sentiment here", "parse_data": {}},
    ]

    history = sentiment_history(events)
    lines = transcript(events)

    assert [(t["label"], t["negative"], t["intent"]) for t in history] == [
        (U, 0.05, "order_status"), (N, 0.9, "deny"), (None, 0.0, None)]
    assert [(line["role"], line["text"]) for line in lines] == [
        ("customer", "where is my order"), ("bot", "What is your order number?"),
        ("customer", "this is awful"), ("customer", "no sentiment here")]
    assert lines[0]["timestamp"].startswith("2026-")


@pytest.mark.parametrize(
    ("intents", "expected"),
    [(["greet", "order_status", "deny"], "order_status"), (["greet", "thank"], "thank"),
     ([], "")])
def test_topic_intent(intents, expected) -> None:
    history = [{"intent": intent} for intent in intents]
    assert escalation.topic_intent(history) == expected


@pytest.mark.parametrize(("intent", "team"), [("payment_problem", "billing"),
                                              ("track_delivery", "logistics"),
                                              ("greet", "customer_service"), (None,
                                                                              "customer_service")])
def test_department(intent, team) -> None:
    assert escalation.department(intent) == team
