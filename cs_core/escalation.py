"""Sentiment-aware escalation: the rules and pure helpers over a conversation.

``SentimentAnalyzer`` puts ``sentiment`` (label, scores, intensity) on every
parsed user message; Rasa stores it in the user events' ``parse_data``, so the
conversation's mood can be read back from its events. The helpers here work on
plain event dicts (rasa-sdk's ``tracker.events``, or Rasa events turned into
dicts) and are used by both servers:

- the Rasa server's ``SentimentEscalationPolicy`` decides with
  ``escalation_reason`` when to hand over;
- the action server's hand-over actions set the ticket's ``priority``.

Both read the same ``EscalationRules``: the policy from its options in
``config.yml``, the action server with ``rules_from_config`` from the same
file, so editing ``config.yml`` changes when a hand-over happens and how urgent
its ticket is, together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from cs_core.errors import InvalidRule

# The single-turn escalation threshold on the shipped sentiment model's calibrated
# intensity: the best F1 of "escalate" against "strongly negative" on its held-out
# validation messages (benchmarks/results/sentiment_v2.json, "escalation").
STRONG_INTENSITY = 0.7255

REQUESTED = "requested"
STRONGLY_NEGATIVE = "strongly_negative"
PERSISTENTLY_NEGATIVE = "persistently_negative"
UNKNOWN_INPUT = "unknown_input"  # three messages in a row not understood
COMPLAINT = "complaint"

# Transcript lines are for people; a 100k-character paste is cut.
MAX_TRANSCRIPT_TEXT = 2000

# The policy whose options hold the rules, as config.yml names it (old and new path).
POLICY_NAMES = frozenset({"SentimentEscalationPolicy",
                          "nlu_components.SentimentEscalationPolicy",
                          "nlu_components.policies.SentimentEscalationPolicy"})


@dataclass(frozen=True)
class EscalationRules:
    """When a conversation goes to a human because of the customer's mood.

    The one home of these defaults: the policy's options and the action
    server's ticket priorities both start from them.

    Attributes:
        strong_intensity: A single negative turn whose calibrated sentiment intensity
            (0 neutral .. 1 furious, from ``SentimentAnalyzer``) reaches this
            escalates at once. Measured in ``benchmarks/sentiment_v2.py``; a
            model without intensity never triggers this rule.
        negative_score: A turn counts as negative (label negative) from this
            negative score.
        negative_turns: This many negative user turns in a row escalate.
    """

    strong_intensity: float = STRONG_INTENSITY
    negative_score: float = 0.5
    negative_turns: int = 3

    def __post_init__(self) -> None:
        for name in ("strong_intensity", "negative_score"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 < value <= 1.0:
                raise InvalidRule(name, value, "use a number in (0, 1]")
        if isinstance(self.negative_turns, bool) or not isinstance(self.negative_turns, int) \
                or self.negative_turns < 1:
            raise InvalidRule("negative_turns", self.negative_turns, "use an integer >= 1")


def rules_from_config(path: str | Path) -> EscalationRules:
    """The rules set on ``SentimentEscalationPolicy`` in a Rasa ``config.yml``.

    Options the file leaves out keep ``EscalationRules``' defaults, as the
    policy does; a config without the policy gives the defaults.

    Raises:
        InvalidRule: the file cannot be read, or a value is unusable.
    """
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise InvalidRule("config", str(path), f"give a readable Rasa config.yml ({error})") \
            from None
    policies = config.get("policies") if isinstance(config, Mapping) else None
    for policy in policies if isinstance(policies, list) else []:
        if isinstance(policy, Mapping) and policy.get("name") in POLICY_NAMES:
            names = {item.name for item in fields(EscalationRules)}
            return EscalationRules(**{key: _number(key, value) for key, value in policy.items()
                                      if key in names})
    return EscalationRules()


def _number(key: str, value: Any) -> Any:
    # YAML reads 7e-1 as a string; the rules' own checks refuse what is not a number.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise InvalidRule(key, value, "give a number") from None
    return value


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
    """The mood of every user turn of the current session, oldest first.

    Args:
        events: Event dicts (``{"event": "user", "text", "parse_data"}`` and
            ``{"event": "session_started"}``); other events are skipped.
    """
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
