"""Sentiment-aware escalation: pure helpers over a conversation's events.

The SentimentAnalyzer puts ``sentiment`` (label, confidence, scores) on every
parsed user message; it is stored in the user events' ``parse_data``, so the
whole conversation's mood can be read back from the tracker. These helpers work
on plain event dicts (rasa-sdk's ``tracker.events``) and are shared by the
hand-over action and by ``nlu_components.SentimentEscalationPolicy``, which
decides on the Rasa server when to escalate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from actions.settings import EscalationRules

REQUESTED = "requested"
STRONGLY_NEGATIVE = "strongly_negative"
PERSISTENTLY_NEGATIVE = "persistently_negative"
UNKNOWN_INPUT = "unknown_input"  # three messages in a row not understood
COMPLAINT = "complaint"

# Transcript lines are for people; a 100k-character paste is cut.
MAX_TRANSCRIPT_TEXT = 2000

# Which team handles what the classifier says a text is about.
DEPARTMENTS = {
    "order_status": "logistics", "track_delivery": "logistics", "change_address": "logistics",
    "cancel_order": "orders", "return_item": "returns", "refund_status": "billing",
    "payment_problem": "billing", "account_help": "accounts",
    "product_availability": "sales", "faq": "customer_service",
}


def sentiment_turn(parse_data: Mapping[str, Any] | None, text: str = "") -> dict[str, Any]:
    """One user turn's mood: label (or ``None``), negative score, intensity (or
    ``None``), intent and text."""
    parse_data = parse_data or {}
    sentiment = parse_data.get("sentiment")
    label, negative, intensity = None, 0.0, None
    if isinstance(sentiment, Mapping):
        label = sentiment.get("label") if isinstance(sentiment.get("label"), str) else None
        if isinstance(sentiment.get("intensity"), (int, float)) and \
                not isinstance(sentiment.get("intensity"), bool):
            intensity = round(float(sentiment["intensity"]), 4)
        scores = sentiment.get("scores")
        if isinstance(scores, Mapping) and isinstance(scores.get("negative"), (int, float)):
            negative = float(scores["negative"])
        elif label == "negative" and isinstance(sentiment.get("confidence"), (int, float)):
            negative = float(sentiment["confidence"])
    intent = parse_data.get("intent")
    return {"label": label, "negative": round(negative, 4), "intensity": intensity,
            "intent": intent.get("name") if isinstance(intent, Mapping) else None,
            "text": str(text or parse_data.get("text") or "")[:MAX_TRANSCRIPT_TEXT]}


def sentiment_history(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The mood of every user turn of the current session, oldest first."""
    history: list[dict[str, Any]] = []
    for event in events:
        if event.get("event") == "session_started":
            history.clear()
        elif event.get("event") == "user":
            history.append(sentiment_turn(event.get("parse_data"), event.get("text") or ""))
    return history


def is_negative(turn: Mapping[str, Any], rules: EscalationRules) -> bool:
    """A turn counts as negative: labelled so, with enough negative score."""
    return turn.get("label") == "negative" and float(turn.get("negative") or 0) >= \
        rules.negative_score


def escalation_reason(history: list[Mapping[str, Any]], rules: EscalationRules) -> str | None:
    """Why the customer's mood calls for a human now, or ``None``.

    Args:
        history: ``sentiment_history`` of the conversation, the latest turn last.
        rules: The thresholds.

    Returns:
        ``strongly_negative`` when the latest turn is negative with an intensity
        of at least ``strong_intensity``, ``persistently_negative`` when the last
        ``negative_turns`` turns were all negative, else ``None``.
    """
    if not history:
        return None
    latest = history[-1]
    intensity = latest.get("intensity")
    if is_negative(latest, rules) and intensity is not None and \
            float(intensity) >= rules.strong_intensity:
        return STRONGLY_NEGATIVE
    recent = history[-rules.negative_turns:]
    if len(recent) == rules.negative_turns and all(is_negative(t, rules) for t in recent):
        return PERSISTENTLY_NEGATIVE
    return None


def priority(reason: str, history: list[Mapping[str, Any]], rules: EscalationRules) -> str:
    """A ticket's priority from why it was opened and the customer's mood."""
    if reason == STRONGLY_NEGATIVE:
        return "urgent"
    if reason == PERSISTENTLY_NEGATIVE:
        return "high"
    if history and is_negative(history[-1], rules):
        return "high"
    return "normal"


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
