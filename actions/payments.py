"""Payment problems: tell the likely cause and fix, then offer the payments team."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

# kind -> (pattern in the customer's words, advice); checked in this order.
PAYMENT_ISSUES: list[tuple[str, re.Pattern[str], str]] = [
    ("double_charge",
     re.compile(r"twice|two times|double|duplicate|charged (me )?(two|2)|charged again", re.I),
     "A second charge is usually a pending authorisation from a failed attempt: your bank "
     "releases it within 3-5 working days. If it is still there after that, our payments "
     "team refunds it."),
    ("charged_no_order",
     re.compile(r"(charged|paid|money (was )?taken|debited).*(no|without|never|didn'?t get)"
                r".*(order|confirmation|email)|no (order )?confirmation", re.I),
     "When the money left your account but no confirmation came, the order is usually still "
     "being confirmed: check your spam folder and your account's Orders page in 15 minutes. "
     "If it isn't there, the payment is refunded automatically within 5 working days."),
    ("declined",
     re.compile(r"declin|refus|reject|fail|didn'?t go through|not go through|won'?t (go|work)"
                r"|doesn'?t work|error|not accepted|invalid card", re.I),
     "Most declined payments are fixed by checking the card's expiry date, the billing "
     "address and the 3-digit security code, or by confirming the payment in your bank's app. "
     "You can also pay with PayPal, Apple Pay, Google Pay or bank transfer."),
]

GENERAL_ADVICE = ("Sorry about the payment trouble. Most problems are solved by checking the "
                  "card's details or trying another method (card, PayPal or bank transfer).")


def payment_issue(text: str) -> tuple[str, str]:
    """``(kind, advice)`` for the customer's description of a payment problem."""
    for kind, pattern, advice in PAYMENT_ISSUES:
        if pattern.search(text or ""):
            return kind, advice
    return "general", GENERAL_ADVICE


class ActionPaymentTriage(Action):
    """Gives the advice for the kind of payment problem, then offers the payments team."""

    def name(self) -> str:
        return "action_payment_triage"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        _, advice = payment_issue(tracker.latest_message.get("text") or "")
        dispatcher.utter_message(text=advice)
        dispatcher.utter_message(response="utter_offer_payments_team")
        return []
