"""Complaints: the customer's own words become a routed ticket for a human.

The description is classified by the assistant's own models through the Rasa
server's ``/model/parse`` (department from the intent, priority from the
sentiment). When that call fails the ticket is still created, marked unrouted.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import escalation
from actions.backend import NewTicket
from actions.base import ServiceAction
from actions.exceptions import ParseError
from actions.handoff import handed_over
from actions.nlu_client import Parsed
from actions.services import parse_order_id
from actions.texts import HAN, han_count, language, say, team_name
from cs_core.escalation import EscalationRules

logger = logging.getLogger(__name__)

MAX_DESCRIPTION_CHARS = 5000
# Below this the classifier is guessing; such a complaint goes to customer service.
MIN_TOPIC_CONFIDENCE = 0.05
# A description says what went wrong: at least this many words besides the
# generic ones of "I want to make a formal complaint".
MIN_CONTENT_WORDS = 3
_GENERIC_WORDS = frozenset(
    "i i'd id want would like to make file lodge register submit a an formal complaint "
    "complain complaining about the please".split())
# Chinese has no spaces: each Han character counts, and this many of them, besides
# the generic phrases of "我要正式投诉一下", say as much as the English words do
# ("快递太慢了" is enough; "我要投诉你们" is not).
MIN_CONTENT_HAN = 5
_GENERIC_ZH = re.compile("|".join(sorted(
    "我要 我想 我需要 想要 要求 投诉 正式 提交 提出 申请 一个 一下 请 帮我 麻烦 关于".split(),
    key=len, reverse=True)))


class ValidateComplaintForm(FormValidationAction):
    """Asks again when the description is too short to act on."""

    def name(self) -> str:
        return "validate_complaint_form"

    async def validate_complaint_description(
            self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: dict[str, Any]) -> dict[str, Any]:
        text = " ".join(str(slot_value or "").split())[:MAX_DESCRIPTION_CHARS].strip()
        return {"complaint_description": text if describes_a_problem(text) else None}


def describes_a_problem(text: str) -> bool:
    """Whether ``text`` says what went wrong, beyond "I want to complain".

    English: ``MIN_CONTENT_WORDS`` words besides the generic ones. Chinese:
    ``MIN_CONTENT_HAN`` Han characters besides the generic phrases. A text that
    mixes both (an English product name in a Chinese sentence) counts each part's
    share of its threshold: words / 3 + Han characters / 5 must reach 1.
    """
    words = [w.strip(".,!?;:'\"()") for w in text.lower().split()]
    # Tokens with Han characters are counted character by character below.
    content_words = sum(1 for w in words if w and w not in _GENERIC_WORDS
                        and not HAN.search(w))
    content_han = han_count(_GENERIC_ZH.sub("", text))
    # Integer form of content_words / MIN_CONTENT_WORDS + content_han / MIN_CONTENT_HAN >= 1.
    return (content_words * MIN_CONTENT_HAN + content_han * MIN_CONTENT_WORDS
            >= MIN_CONTENT_WORDS * MIN_CONTENT_HAN)


def routing(parsed: Parsed | None, rules: EscalationRules) -> tuple[str, str, bool]:
    """``(department, priority, routed)`` from the classifiers' view of a complaint."""
    if parsed is None:
        return "unrouted", "normal", False
    turn = escalation.sentiment_turn({"sentiment": parsed.sentiment, "intent":
                                      {"name": parsed.intent}})
    if escalation.escalation_reason([turn], rules) == escalation.STRONGLY_NEGATIVE:
        priority = "urgent"
    else:
        priority = "high" if escalation.is_negative(turn, rules) else "normal"
    return escalation.department(topic(parsed)), priority, True


def topic(parsed: Parsed) -> str:
    """What a complaint is about: the best-ranked intent that names a team.

    The description itself is mostly classified as ``complaint``; the ranking's
    next intents (a return, a payment, a delivery) say where it belongs.
    """
    for name, confidence in parsed.ranking or ((parsed.intent, parsed.confidence),):
        if name in escalation.DEPARTMENTS and confidence >= MIN_TOPIC_CONFIDENCE:
            return name
    return parsed.intent


class ActionFileComplaint(ServiceAction):
    """Classifies the complaint, opens a routed ticket, tells the customer its reference."""

    def name(self) -> str:
        return "action_file_complaint"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        description = str(tracker.get_slot("complaint_description") or "")
        parsed: Parsed | None = None
        try:
            parsed = await self.services.classifier.parse(description)
        except ParseError as error:
            logger.error("complaint of conversation %s not routed: %s", tracker.sender_id, error)
        rules = self.services.settings.escalation
        department, priority, routed = routing(parsed, rules)
        ticket = await self.services.backend.create_ticket(NewTicket(
            sender_id=tracker.sender_id, reason=escalation.COMPLAINT,
            intent=topic(parsed) if parsed else "", priority=priority, department=department,
            routed=routed, order_id=parse_order_id(description)
            or parse_order_id(tracker.get_slot("order_id")),
            description=description,
            transcript=tuple(escalation.transcript(tracker.events)),
            sentiment_history=tuple(escalation.sentiment_history(tracker.events))))
        say(dispatcher, tracker, "complaint_filed", reference=ticket.reference,
            team=team_name(department, routed, language(tracker)))
        # The hand-over's slots and the reminder that ends it without a reply.
        return [SlotSet("complaint_description", None),
                *handed_over(ticket.reference, self.services.settings)]
