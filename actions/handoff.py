"""Hand-over to a human colleague: a ticket with the whole conversation, and its end.

``action_handoff`` runs when the customer asks for a human (a rule) or when
``nlu_components.SentimentEscalationPolicy`` sees the customer's mood calls for
one (it sets ``escalation_reason`` first). The ticket holds the transcript, the
sentiment of every user turn, the detected intent and a priority. The ``handoff``
slot then stops self-service: ``action_handoff_pending`` adds each further
message to the ticket instead, and says nothing of its own while an agent holds
the ticket in the console (it only passes on the agent's lines that the
customer's channel could not push).

The hand-over ends (``handoff``, ``unknown_handoff`` and ``escalation_reason``
unset, the customer told why) in four ways:

- a colleague closes the ticket: the agent console (``console/``) or another
  ticket system calls Rasa's JWT-protected
  ``POST /conversations/<sender>/trigger_intent`` with ``EXTERNAL_ticket_closed``
  and the entity ``ticket_reference`` (and ``ticket_outcome``: ``handback`` or
  ``resolved``); ``action_release_handoff`` closes that ticket in the shop
  database, only if it is this conversation's, and asks the customer for a 1-5
  rating when an agent handled it (``action_store_satisfaction`` stores it);
- nobody replied in time: the hand-over schedules a Rasa reminder
  (``EXTERNAL_handoff_timeout``, ``Settings.handoff_timeout_s`` later, not killed
  by the customer's messages); ``action_handoff_timeout`` releases the hand-over
  if the ticket is still open and no colleague has replied;
- the customer asks to go on with the assistant (``continue_with_bot``):
  ``action_continue_with_bot``;
- a new session starts: ``actions.session.ActionSessionStart`` carries every
  slot over but these.

Each way cancels the pending reminder. The two ``EXTERNAL_`` intents are only
obeyed when Rasa itself created the message (its text then starts with
``EXTERNAL: ``); a customer typing ``/EXTERNAL_ticket_closed{...}`` as a payload
gets the answer any message gets during a hand-over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import (
    ActiveLoop,
    EventType,
    FollowupAction,
    ReminderCancelled,
    ReminderScheduled,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher

from actions import escalation
from actions.backend import NewTicket, Ticket
from actions.base import ServiceAction
from actions.exceptions import BackendError
from actions.services import parse_order_id
from actions.settings import Settings
from actions.texts import (
    EN,
    TEXTS,
    duration,
    language,
    priority_name,
    rating_buttons,
    say,
    text,
)
from cs_core.escalation import EscalationRules

logger = logging.getLogger(__name__)

TICKET_CLOSED_INTENT = "EXTERNAL_ticket_closed"
TIMEOUT_INTENT = "EXTERNAL_handoff_timeout"
# The external intents' entity: the ticket's reference. Not the ``ticket`` slot's
# entity, so that the reference a caller sends never overwrites the conversation's.
TICKET_ENTITY = "ticket_reference"
# The slots a hand-over sets and its end unsets (``ticket`` stays: the reference).
HANDOFF_SLOTS = ("handoff", "unknown_handoff", "escalation_reason")
# rasa.shared.core.constants.EXTERNAL_MESSAGE_PREFIX: Rasa's text of a message it
# made itself (trigger_intent, reminders). Copied: the action server never imports rasa.
EXTERNAL_MESSAGE_PREFIX = "EXTERNAL: "
# What a colleague's answer is in a ticket's transcript.
AGENT_ROLE = "agent"
# How the agent console ended the ticket (the external intent's entity ``ticket_outcome``):
# handed back to the assistant, or closed with a resolution note.
OUTCOME_ENTITY = "ticket_outcome"
HANDED_BACK = "handback"
# The satisfaction question after a closed ticket: buttons whose payloads set the
# ``rating`` entity of ``rate_support`` (action_store_satisfaction stores it).
RATE_INTENT = "rate_support"
RATING_ENTITY = "rating"
# English, for callers that quote them; the actions send them in the customer's language.
SATISFACTION_QUESTION = TEXTS["satisfaction_question"][EN]
SATISFACTION_BUTTONS = rating_buttons(EN, RATE_INTENT, RATING_ENTITY)

# The apology before the hand-over's text, by reason: the catalogue's key, or none
# (asked for a human; or action_handle_fallback has just apologised).
REASON_KEYS = {
    escalation.STRONGLY_NEGATIVE: "reason_strongly_negative",
    escalation.PERSISTENTLY_NEGATIVE: "reason_persistently_negative",
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


def timeout_reminder_name(reference: str) -> str:
    """The name of the hand-over's reminder.

    Rasa keys its scheduler's jobs by the reminder's name across all
    conversations (a second reminder of the same name replaces the first), so
    the name carries the ticket's unique reference.
    """
    return f"handoff_timeout_{reference}"


def handed_over(reference: str, settings: Settings) -> list[EventType]:
    """The events that start a hand-over: its slots and the reminder that ends it."""
    due = datetime.now(timezone.utc) + timedelta(seconds=settings.handoff_timeout_s)
    return [SlotSet("handoff", True), SlotSet("ticket", reference),
            ReminderScheduled(TIMEOUT_INTENT, trigger_date_time=due,
                              entities={TICKET_ENTITY: reference},
                              name=timeout_reminder_name(reference),
                              kill_on_user_message=False)]


def released(reference: str | None) -> list[EventType]:
    """The events that end a hand-over: its slots unset, its reminder cancelled."""
    events: list[EventType] = [SlotSet("handoff", False), SlotSet("unknown_handoff", False),
                               SlotSet("escalation_reason", None)]
    if reference:
        events.append(ReminderCancelled(name=timeout_reminder_name(reference)))
    return events


def is_external(tracker: Tracker, intent: str) -> bool:
    """Whether the latest message is ``intent`` made by Rasa itself (trigger_intent or
    a reminder), not typed by the customer as a ``/intent`` payload."""
    message = tracker.latest_message or {}
    return ((message.get("intent") or {}).get("name") == intent
            and str(message.get("text") or "").startswith(EXTERNAL_MESSAGE_PREFIX))


def ticket_reference(tracker: Tracker) -> str | None:
    """The ``ticket_reference`` entity of the latest message, if any."""
    value = next(tracker.get_latest_entity_values(TICKET_ENTITY), None)
    return str(value).strip() if value else None


def held_by_agent(ticket: Ticket | None) -> bool:
    """Whether a colleague has claimed the open ticket in the agent console."""
    return bool(ticket is not None and ticket.status == "open"
                and ticket.extra.get("assigned_agent"))


def agent_replied(ticket: Ticket, events: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a colleague has answered or holds the conversation: the ticket claimed
    in the console, a line of role ``agent`` on it, or an ``agent`` event (Rasa's
    ``AgentUttered``) in the conversation since the ticket's hand-over."""
    if held_by_agent(ticket) or any(line.get("role") == AGENT_ROLE
                                    for line in ticket.transcript):
        return True
    replied = False
    for event in events:
        if (event.get("event") == "slot" and event.get("name") == "ticket"
                and event.get("value") == ticket.reference):
            replied = False  # the hand-over of this ticket starts here
        elif event.get("event") == "agent":
            replied = True
    return replied


def ignore_forged(tracker: Tracker) -> list[EventType]:
    """The answer to an ``EXTERNAL_`` intent the customer typed: what any message gets."""
    logger.warning("conversation %s sent the external intent %s itself; ignored",
                   tracker.sender_id, (tracker.latest_message or {}).get("intent", {}).get("name"))
    return [FollowupAction("action_handoff_pending" if tracker.get_slot("handoff")
                           else "utter_default")]


class ActionHandoff(ServiceAction):
    """Opens a ticket for a human, tells the customer its reference, stops self-service."""

    def name(self) -> str:
        return "action_handoff"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        reason = tracker.get_slot("escalation_reason") or escalation.REQUESTED
        settings = self.services.settings
        ticket = await self.services.backend.create_ticket(
            ticket_for(tracker, reason, settings.escalation))
        lang = language(tracker)
        apology = text(REASON_KEYS[reason], lang) if reason in REASON_KEYS else ""
        say(dispatcher, tracker, "handoff", reason=apology, reference=ticket.reference,
            priority=priority_name(ticket.priority, lang),
            duration=duration(settings.handoff_timeout_s, lang))
        # A form in progress ends: the human takes it from here.
        return [*handed_over(ticket.reference, settings), SlotSet("unknown_handoff", False),
                SlotSet("requested_slot", None), ActiveLoop(None)]


class ActionHandoffPending(ServiceAction):
    """After a hand-over: keeps the customer's messages on the ticket for the human.

    While a colleague holds the ticket (claimed in the agent console) the assistant
    says nothing of its own: it only hands over the colleague's lines that the
    channel could not push (REST answers only when the customer calls).
    """

    def name(self) -> str:
        return "action_handoff_pending"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        reference = tracker.get_slot("ticket")
        backend = self.services.backend
        if reference:
            latest = next((e for e in reversed(tracker.events) if e.get("event") == "user"), {})
            lines = escalation.transcript([latest])
            message = lines[-1] if lines else {"role": "customer", "text": "", "timestamp": ""}
            await backend.add_ticket_message(reference, message)
            if held_by_agent(await backend.get_ticket(reference)):
                for line in await backend.take_undelivered_agent_lines(reference):
                    dispatcher.utter_message(text=line)
                # Silent, but not empty-handed: ActionFailurePolicy reads an action that
                # returns nothing as a failed one and would apologise to the customer.
                return [SlotSet("handoff", True)]
        if reference:
            say(dispatcher, tracker, "handoff_pending_ticket", reference=reference)
        else:
            say(dispatcher, tracker, "handoff_pending")
        return []


class ActionReleaseHandoff(ServiceAction):
    """``EXTERNAL_ticket_closed``: a colleague closed the ticket; self-service again.

    Only a ticket of this conversation is closed: a reference of another
    conversation (or none, or an unknown one) is refused, logged, and changes
    nothing. A ticket closed already is not announced twice.
    """

    def name(self) -> str:
        return "action_release_handoff"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        if not is_external(tracker, TICKET_CLOSED_INTENT):
            return ignore_forged(tracker)
        reference = ticket_reference(tracker)
        backend = self.services.backend
        ticket = await backend.get_ticket(reference) if reference else None
        if ticket is None or ticket.sender_id != tracker.sender_id:
            logger.warning("refused to close ticket %r from conversation %s: not a ticket of "
                           "this conversation", reference, tracker.sender_id)
            return []
        current = tracker.get_slot("handoff") and tracker.get_slot("ticket") == reference
        if ticket.status == "closed" and not current:
            logger.info("ticket %s of conversation %s was closed already", reference,
                        tracker.sender_id)
            return []
        await backend.close_ticket(reference)
        logger.info("ticket %s closed through the API; conversation %s released", reference,
                    tracker.sender_id)
        # Lines the colleague wrote that a REST customer has not fetched yet come first.
        for line in await backend.take_undelivered_agent_lines(reference):
            dispatcher.utter_message(text=line)
        if not current:
            # An earlier ticket, while the hand-over is over or belongs to a newer one.
            say(dispatcher, tracker, "ticket_closed_earlier", reference=reference)
            return [ReminderCancelled(name=timeout_reminder_name(reference))]
        outcome = next(tracker.get_latest_entity_values(OUTCOME_ENTITY), None)
        say(dispatcher, tracker,
            "ticket_handed_back" if outcome == HANDED_BACK else "ticket_closed",
            reference=reference)
        if ticket.extra.get("assigned_agent"):
            # Someone of ours talked to the customer: ask how it went (stored on the ticket).
            # The buttons' titles are in the customer's language, their payloads are not.
            say(dispatcher, tracker, "satisfaction_question",
                buttons=rating_buttons(language(tracker), RATE_INTENT, RATING_ENTITY))
        return released(reference)


class ActionHandoffTimeout(ServiceAction):
    """``EXTERNAL_handoff_timeout``: no colleague replied in time; self-service again.

    The hand-over's reminder. Nothing happens when the hand-over has ended
    otherwise, belongs to a newer ticket, or a colleague has replied (then it
    lasts until they close the ticket, or the session ends). When the database
    cannot be read it looks again one timeout later.
    """

    def name(self) -> str:
        return "action_handoff_timeout"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        if not is_external(tracker, TIMEOUT_INTENT):
            return ignore_forged(tracker)
        reference = ticket_reference(tracker)
        if not tracker.get_slot("handoff") or not reference \
                or reference != tracker.get_slot("ticket"):
            return []
        try:
            ticket = await self.services.backend.get_ticket(reference)
        except BackendError as error:
            logger.error("hand-over timeout of conversation %s: %s; looking again later",
                         tracker.sender_id, error)
            return handed_over(reference, self.services.settings)[2:]
        if ticket is not None and ticket.status == "open" and agent_replied(ticket,
                                                                          tracker.events):
            logger.info("hand-over timeout of conversation %s: a colleague has replied on %s; "
                        "the hand-over stays", tracker.sender_id, reference)
            return []
        if ticket is None:  # not in the database (any more): promise nothing about it
            key = "timeout_no_ticket"
        elif ticket.status != "open":
            key = "timeout_ticket_closed"
        else:
            key = "timeout_ticket_open"
        logger.info("hand-over of conversation %s timed out without a reply on %s",
                    tracker.sender_id, reference)
        say(dispatcher, tracker, key, reference=reference)
        return released(reference)


class ActionStoreSatisfaction(ServiceAction):
    """``rate_support``: the customer's 1-5 answer to the satisfaction question.

    Stored on the conversation's own ticket (the ``ticket`` slot), once, and only
    when that ticket is closed: the rating belongs to the help already given.
    """

    def name(self) -> str:
        return "action_store_satisfaction"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        reference = tracker.get_slot("ticket")
        value = str(next(tracker.get_latest_entity_values(RATING_ENTITY), "") or "").strip()
        rating = int(value) if value in {"1", "2", "3", "4", "5"} else None
        stored = bool(reference and rating and not tracker.get_slot("handoff")
                      and await self.services.backend.rate_ticket(reference, tracker.sender_id,
                                                                  rating))
        if stored:
            logger.info("conversation %s rated ticket %s: %d", tracker.sender_id, reference,
                        rating)
            say(dispatcher, tracker, "rating_stored")
        else:
            say(dispatcher, tracker, "rating_nothing")
        return []


class ActionContinueWithBot(ServiceAction):
    """``continue_with_bot``: the customer would rather go on with the assistant.

    The ticket stays open (the colleague may still follow up) and gets the
    customer's message, so that they know.
    """

    def name(self) -> str:
        return "action_continue_with_bot"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        if not tracker.get_slot("handoff"):
            say(dispatcher, tracker, "bot_here")
            return []
        reference = tracker.get_slot("ticket")
        if reference:
            latest = next((e for e in reversed(tracker.events) if e.get("event") == "user"), {})
            try:
                for line in escalation.transcript([latest]):
                    await self.services.backend.add_ticket_message(reference, line)
            except BackendError as error:  # the hand-over ends all the same
                logger.error("could not note on ticket %s that conversation %s went back to "
                             "the assistant: %s", reference, tracker.sender_id, error)
        if reference:
            say(dispatcher, tracker, "back_with_bot_ticket", reference=reference)
        else:
            say(dispatcher, tracker, "back_with_bot")
        return released(reference)
