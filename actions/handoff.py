"""Hand-over to a human colleague: a ticket with the whole conversation.

``action_handoff`` runs when the customer asks for a human (a rule) or when
``nlu_components.SentimentEscalationPolicy`` sees the customer's mood calls for
one (it sets ``escalation_reason`` first). The ticket holds the transcript, the
sentiment of every user turn, the detected intent and a priority. The ``handoff``
slot then stops self-service: ``action_handoff_pending`` adds each further
message to the ticket instead.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import escalation
from actions.backend import NewTicket
from actions.base import ServiceAction
from actions.services import parse_order_id
from actions.settings import EscalationRules

REASON_TEXTS = {
    escalation.REQUESTED: "",
    escalation.STRONGLY_NEGATIVE: "I'm sorry this has been so frustrating. ",
    escalation.PERSISTENTLY_NEGATIVE: "I'm sorry I haven't been able to sort this out. ",
    escalation.UNKNOWN_INPUT: "",  # action_handle_fallback has just apologised
}


def ticket_for(tracker: Tracker, reason: str, rules: EscalationRules) -> NewTicket:
    """The ticket for this conversation: transcript, moods, intent and priority."""
    history = escalation.sentiment_history(tracker.events)
    return NewTicket(
        sender_id=tracker.sender_id,
        reason=reason,
        intent=escalation.topic_intent(history),
        priority=escalation.priority(reason, history, rules),
        department=escalation.department(escalation.topic_intent(history)),
        order_id=parse_order_id(tracker.get_slot("order_id")),
        transcript=tuple(escalation.transcript(tracker.events)),
        sentiment_history=tuple(history),
    )


class ActionHandoff(ServiceAction):
    """Opens a ticket for a human, tells the customer its reference, stops self-service."""

    def name(self) -> str:
        return "action_handoff"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        reason = tracker.get_slot("escalation_reason") or escalation.REQUESTED
        ticket = await self.services.backend.create_ticket(
            ticket_for(tracker, reason, self.services.settings.escalation))
        dispatcher.utter_message(text=(
            f"{REASON_TEXTS.get(reason, '')}I've passed our conversation to a colleague "
            f"(ticket {ticket.reference}, {ticket.priority} priority). They will reply here "
            "within a few minutes during opening hours."))
        # A form in progress ends: the human takes it from here.
        return [SlotSet("handoff", True), SlotSet("ticket", ticket.reference),
                SlotSet("unknown_handoff", False), SlotSet("requested_slot", None),
                ActiveLoop(None)]


class ActionHandoffPending(ServiceAction):
    """After a hand-over: keeps the customer's messages on the ticket for the human."""

    def name(self) -> str:
        return "action_handoff_pending"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        reference = tracker.get_slot("ticket")
        if reference:
            latest = next((e for e in reversed(tracker.events) if e.get("event") == "user"), {})
            lines = escalation.transcript([latest])
            message = lines[-1] if lines else {"role": "customer", "text": "", "timestamp": ""}
            await self.services.backend.add_ticket_message(reference, message)
        dispatcher.utter_message(text=(
            f"A colleague has our conversation{f' (ticket {reference})' if reference else ''} "
            "and will answer here shortly; I've added your message for them."))
        return []
