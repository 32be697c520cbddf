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
