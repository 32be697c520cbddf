"""Hand-over tickets: which team, what the conversation is about, its transcript.

The mood rules (``escalation_reason``, ``priority``, ``sentiment_history``) are
shared with the Rasa server's escalation policy and live in
``cs_core.escalation``; they are re-exported here for the actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from cs_core.escalation import (  # noqa: F401 - the actions' one import of the rules
    COMPLAINT,
    MAX_TRANSCRIPT_TEXT,
    PERSISTENTLY_NEGATIVE,
    REQUESTED,
    STRONGLY_NEGATIVE,
    UNKNOWN_INPUT,
    EscalationRules,
    escalation_reason,
    is_negative,
    priority,
    sentiment_history,
    sentiment_turn,
)

# Which team handles what the classifier says a text is about.
DEPARTMENTS = {
    "order_status": "logistics", "track_delivery": "logistics", "change_address": "logistics",
    "cancel_order": "orders", "return_item": "returns", "refund_status": "billing",
    "payment_problem": "billing", "account_help": "accounts",
    "product_availability": "sales", "faq": "customer_service",
}


def department(intent: str | None) -> str:
    """The team for an intent (``customer_service`` for anything else)."""
    return DEPARTMENTS.get(intent or "", "customer_service")


def _timestamp(value: Any) -> str:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).isoformat(timespec="seconds")
    return ""


def transcript(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The current session's messages: ``{"role", "text", "timestamp"}``, oldest first."""
    lines: list[dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "session_started":
            lines.clear()
        elif kind in {"user", "bot"} and event.get("text"):
            lines.append({"role": "customer" if kind == "user" else "bot",
                          "text": str(event["text"])[:MAX_TRANSCRIPT_TEXT],
                          "timestamp": _timestamp(event.get("timestamp"))})
    return lines


def topic_intent(history: list[Mapping[str, Any]]) -> str:
    """The latest intent that says what the conversation is about."""
    skip = {None, "greet", "goodbye", "thank", "affirm", "deny", "inform", "request_human",
            "complaint", "bot_challenge", "nlu_fallback", "out_of_scope"}
    for turn in reversed(history):
        if turn.get("intent") not in skip:
            return str(turn["intent"])
    return str(history[-1].get("intent") or "") if history else ""
