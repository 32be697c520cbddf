"""Payment problems: tell the likely cause and fix, then offer the payments team."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import texts

# kind -> pattern in the customer's words (English, then Chinese), checked in this
# order; the advice for each kind is the catalogue's ``payment_<kind>``.
PAYMENT_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("double_charge",
     re.compile(r"twice|two times|double|duplicate|charged (me )?(two|2)|charged again"
                r"|两次|2次|重复(扣|支付|付款|收费)|多扣|扣了两", re.I)),
    ("charged_no_order",
     re.compile(r"(charged|paid|money (was )?taken|debited).*(no|without|never|didn'?t get)"
                r".*(order|confirmation|email)|no (order )?confirmation"
                r"|(扣|付|支付|钱).*(没|无|未).*(订单|确认|邮件)", re.I)),
    ("declined",
     re.compile(r"declin|refus|reject|fail|didn'?t go through|not go through|won'?t (go|work)"
                r"|doesn'?t work|error|not accepted|invalid card"
                r"|拒|失败|不成功|付不了|支付不了|无法(支付|付款)|报错|错误|无效", re.I)),
]
GENERAL = "general"


def payment_issue(text: str, lang: str = texts.EN) -> tuple[str, str]:
    """``(kind, advice)`` for the customer's description of a payment problem; the
    advice in ``lang``."""
    for kind, pattern in PAYMENT_PATTERNS:
        if pattern.search(text or ""):
            return kind, texts.text(f"payment_{kind}", lang)
    return GENERAL, texts.text(f"payment_{GENERAL}", lang)


class ActionPaymentTriage(Action):
    """Gives the advice for the kind of payment problem, then offers the payments team."""

    def name(self) -> str:
        return "action_payment_triage"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        _, advice = payment_issue(tracker.latest_message.get("text") or "",
                                  texts.language(tracker))
        dispatcher.utter_message(text=advice)
        # A domain response: Rasa picks its Chinese variation by the `language` slot.
        dispatcher.utter_message(response="utter_offer_payments_team")
        return []
