"""``action_session_start``: a new session keeps the customer's slots, not a hand-over.

Rasa's own ``action_session_start`` carries every slot over to the new session
(``carry_over_slots_to_new_session: true`` in domain.yml), the hand-over's too:
a customer who was handed over once would never get self-service again. This
one, run on the action server as Rasa's documentation describes for a custom
session start, carries the slots over the same way except ``handoff``,
``unknown_handoff`` and ``escalation_reason`` (they start again from their
initial values), and cancels the hand-over's pending reminder. It needs no
database, so a new session starts even when the shop's database is down.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, ReminderCancelled, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import HANDOFF_SLOTS, timeout_reminder_name


def carries_slots_over(domain: dict[str, Any]) -> bool:
    """domain.yml's ``session_config: carry_over_slots_to_new_session`` (Rasa's default: on)."""
    config = domain.get("session_config") or {}
    return bool(config.get("carry_over_slots_to_new_session", True))


def carried_slots(tracker: Tracker) -> list[EventType]:
    """``SlotSet`` events for the slots the new session keeps: all set ones but the
    hand-over's."""
    return [SlotSet(name, value) for name, value in tracker.slots.items()
            if name not in HANDOFF_SLOTS and value is not None]


class ActionSessionStart(Action):
    """Starts a session, carrying over every slot but the hand-over's."""

    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        events: list[EventType] = [SessionStarted()]
        if carries_slots_over(domain):
            events.extend(carried_slots(tracker))
        reference = tracker.get_slot("ticket")
        if tracker.get_slot("handoff") and reference:
            events.append(ReminderCancelled(name=timeout_reminder_name(reference)))
        events.append(ActionExecuted("action_listen"))
        return events
