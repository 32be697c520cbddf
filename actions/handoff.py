"""Hand-over to a human colleague."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.orders import ServiceAction


class ActionHandoff(ServiceAction):
    """Opens a ticket for a human, tells the customer its reference, stops self-service."""

    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name") or "request_human"
        ticket = await self.services.backend.create_ticket(
            tracker.sender_id, reason=intent, order_id=tracker.get_slot("order_id"))
        dispatcher.utter_message(text=(
            f"I've passed your conversation to a colleague (ticket {ticket.reference}). "
            "They will reply here within a few minutes during opening hours."))
        return [SlotSet("handoff", True)]
