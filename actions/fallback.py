"""What the bot does with a message it did not understand.

The NLU pipeline marks such a message with the intent ``nlu_fallback`` (low
confidence, keyboard mash, another language) or ``out_of_scope`` (outside
every topic), and says why in ``unknown_input``. Messages not understood in a
row escalate, so nobody is stuck in a loop:

1. the first gets an answer for its kind: "please rephrase", "I can only help
   with ...", or, for another language, "I can answer in English; a colleague
   can help in other languages" with a hand-over offer;
2. the second in a row offers a human;
3. the third in a row hands over: ``unknown_handoff`` is set, and a rule runs
   ``action_handoff`` (whose ticket reason is ``unknown_input``).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

FALLBACK_INTENT = "nlu_fallback"
UNKNOWN_INTENTS = frozenset({FALLBACK_INTENT, "out_of_scope"})
# The nth message in a row not understood that offers a human, and that hands over.
OFFER_HUMAN_AT = 2
HAND_OVER_AT = 3
UNKNOWN_HANDOFF_SLOT = "unknown_handoff"
UNKNOWN_INPUT_REASON = "unknown_input"


def _intent(event: dict[str, Any]) -> str | None:
    return ((event.get("parse_data") or {}).get("intent") or {}).get("name")


def consecutive_fallbacks(events: list[dict[str, Any]]) -> int:
    """How many of the latest user messages in a row were not understood."""
    count = 0
    for event in reversed(events):
        if event.get("event") == "session_started":
            break
        if event.get("event") != "user":
            continue
        if _intent(event) not in UNKNOWN_INTENTS:
            break
        count += 1
    return count


def unknown_kind(parse_data: dict[str, Any]) -> str:
    """Why the latest message was not understood: ``other_language``,
    ``out_of_scope`` or ``unclear`` (low confidence, keyboard mash)."""
    reason = (parse_data.get("unknown_input") or {}).get("reason")
    if reason == "other_language":
        return "other_language"
    if reason == "out_of_scope" or _intent({"parse_data": parse_data}) == "out_of_scope":
        return "out_of_scope"
    return "unclear"


FIRST_RESPONSES = {
    "other_language": "utter_other_language",
    "out_of_scope": "utter_out_of_scope",
    "unclear": "utter_please_rephrase",
}


def response_for(count: int, kind: str) -> str:
    """The response for the ``count``-th message in a row not understood."""
    if count >= HAND_OVER_AT:
        return "utter_unknown_handoff"
    if count >= OFFER_HUMAN_AT:
        return "utter_offer_human"
    return FIRST_RESPONSES[kind]


class ActionHandleFallback(Action):
    """Answers a message not understood; offers a human at the second, hands over
    at the third in a row (see the module docstring)."""

    def name(self) -> str:
        return "action_handle_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        count = max(consecutive_fallbacks(tracker.events), 1)
        kind = unknown_kind(tracker.latest_message or {})
        dispatcher.utter_message(response=response_for(count, kind))
        if count >= HAND_OVER_AT:
            return [SlotSet(UNKNOWN_HANDOFF_SLOT, True),
                    SlotSet("escalation_reason", UNKNOWN_INPUT_REASON)]
        return []
