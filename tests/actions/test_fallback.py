from __future__ import annotations

import pytest
from rasa_sdk import Tracker

from actions.fallback import ActionHandleFallback, consecutive_fallbacks


def user(intent: str) -> dict:
    return {"event": "user", "text": "x", "parse_data": {"intent": {"name": intent}}}


BOT = {"event": "bot", "text": "..."}
ACTION = {"event": "action", "name": "action_handle_fallback"}


@pytest.mark.parametrize(
    ("events", "count"),
    [
        ([], 0),
        ([user("greet")], 0),
        ([user("nlu_fallback")], 1),
        ([user("nlu_fallback"), ACTION, BOT, user("nlu_fallback")], 2),
        ([user("nlu_fallback"), BOT, user("greet"), BOT, user("nlu_fallback")], 1),
        ([user("nlu_fallback"), user("nlu_fallback"), user("nlu_fallback")], 3),
    ],
)
def test_consecutive_fallbacks(events, count) -> None:
    assert consecutive_fallbacks(events) == count


@pytest.mark.parametrize(
    ("events", "response"),
    [([user("nlu_fallback")], "utter_please_rephrase"),
     ([user("nlu_fallback"), ACTION, BOT, user("nlu_fallback")], "utter_offer_human")],
)
async def test_second_fallback_offers_a_human(dispatcher, events, response) -> None:
    tracker = Tracker("u", {}, {}, events, False, None, {}, "action_listen")

    await ActionHandleFallback().run(dispatcher, tracker, {})

    assert [m["response"] for m in dispatcher.messages] == [response]


def unknown(intent: str, reason: str = "") -> dict:
    return {"event": "user", "text": "x",
            "parse_data": {"intent": {"name": intent}, "unknown_input": {"reason": reason}}}


@pytest.mark.parametrize(
    ("latest", "response"),
    [(unknown("nlu_fallback", "low_confidence"), "utter_please_rephrase"),
     (unknown("nlu_fallback", "gibberish"), "utter_please_rephrase"),
     (unknown("out_of_scope", "out_of_scope"), "utter_out_of_scope"),
     (unknown("out_of_scope"), "utter_out_of_scope"),  # the trained out_of_scope intent
     (unknown("nlu_fallback", "other_language"), "utter_other_language")],
)
async def test_first_answer_depends_on_the_kind(dispatcher, latest, response) -> None:
    tracker = Tracker("u", {}, latest["parse_data"], [latest], False, None, {}, "action_listen")

    events = await ActionHandleFallback().run(dispatcher, tracker, {})

    assert [m["response"] for m in dispatcher.messages] == [response]
    assert events == []


async def test_third_in_a_row_hands_over(dispatcher) -> None:
    """Out of scope and unclear messages count together; the third sets the hand-over."""
    events = [unknown("out_of_scope", "out_of_scope"), ACTION, BOT,
              unknown("nlu_fallback", "gibberish"), ACTION, BOT,
              unknown("out_of_scope", "out_of_scope")]
    tracker = Tracker("u", {}, events[-1]["parse_data"], events, False, None, {}, "action_listen")

    result = await ActionHandleFallback().run(dispatcher, tracker, {})

    assert [m["response"] for m in dispatcher.messages] == ["utter_unknown_handoff"]
    assert {"event": "slot", "name": "unknown_handoff", "value": True,
            "timestamp": None} in result
    assert {"event": "slot", "name": "escalation_reason", "value": "unknown_input",
            "timestamp": None} in result


def test_a_new_session_starts_the_count_again() -> None:
    events = [user("nlu_fallback"), user("nlu_fallback"), {"event": "session_started"},
              user("out_of_scope")]

    assert consecutive_fallbacks(events) == 1
