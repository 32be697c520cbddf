from __future__ import annotations

import pytest

from actions import escalation
from actions.escalation import (
    PERSISTENTLY_NEGATIVE,
    STRONGLY_NEGATIVE,
    escalation_reason,
    sentiment_history,
    transcript,
)
from actions.exceptions import SettingsError
from actions.settings import EscalationRules
from tests.actions.conftest import bot_event, user_event

RULES = EscalationRules(strong_intensity=0.7, negative_score=0.5, negative_turns=3)
N, U, P = "negative", "neutral", "positive"


def turns(*moods: tuple) -> list[dict]:
    """Turns from (label, negative score[, intensity])."""
    return [{"label": mood[0], "negative": mood[1],
             "intensity": mood[2] if len(mood) > 2 else None, "intent": "inform", "text": ""}
            for mood in moods]


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], None),
        ([(U, 0.1)], None),
        ([(N, 0.8)], None),
        ([(N, 0.98)], None),  # no intensity (an older model): only the several-turns rule
        ([(N, 0.9, 0.8)], STRONGLY_NEGATIVE),
        ([(N, 0.999, 0.4)], None),  # surely negative, but mildly: no human yet
        ([(U, 0.1), (U, 0.1), (N, 0.97, 0.7)], STRONGLY_NEGATIVE),
        ([(N, 0.98, 0.9), (U, 0.1)], None),  # it was, but the customer calmed down
        ([(P, 0.0, 0.95)], None),  # ecstatic is intense too, but not negative
        ([(N, 0.8), (N, 0.7)], None),
        ([(N, 0.8), (N, 0.7), (N, 0.9)], PERSISTENTLY_NEGATIVE),
        ([(P, 0.0), (N, 0.8), (N, 0.7), (N, 0.9)], PERSISTENTLY_NEGATIVE),
        ([(N, 0.8), (U, 0.3), (N, 0.9), (N, 0.9)], None),
        ([(N, 0.8), (N, 0.4), (N, 0.9)], None),  # labelled negative, but barely
        ([(N, 0.8), (None, 0.0), (N, 0.9)], None),  # a turn without sentiment
        ([(U, 0.99)], None),  # a high score without the label is not negative
    ],
)
def test_escalation_rules(history, expected) -> None:
    assert escalation_reason(turns(*history), RULES) == expected


@pytest.mark.parametrize("turns_needed", [1, 2, 5])
def test_negative_turns_setting(turns_needed: int) -> None:
    rules = EscalationRules(strong_intensity=1.0, negative_turns=turns_needed)
    history = turns(*[(N, 0.8)] * turns_needed)

    assert escalation_reason(history[:-1], rules) is None
    assert escalation_reason(history, rules) == PERSISTENTLY_NEGATIVE


@pytest.mark.parametrize(
    "kwargs", [{"strong_intensity": 0}, {"strong_intensity": 1.5}, {"negative_score": "high"},
               {"negative_turns": 0}, {"negative_turns": 2.5}, {"negative_turns": True}])
def test_bad_rules_are_refused(kwargs) -> None:
    with pytest.raises(SettingsError):
        EscalationRules(**kwargs)


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
    ("reason", "last", "expected"),
    [(STRONGLY_NEGATIVE, (N, 0.99), "urgent"), (PERSISTENTLY_NEGATIVE, (N, 0.8), "high"),
     ("requested", (N, 0.8), "high"), ("requested", (U, 0.1), "normal")])
def test_priority(reason, last, expected) -> None:
    assert escalation.priority(reason, turns(last), RULES) == expected


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
