"""A conversation as the agent reads it: every message with its intent, confidence
and sentiment, from Rasa's tracker events (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# rasa.shared.core.constants.EXTERNAL_MESSAGE_PREFIX (the console never imports rasa).
EXTERNAL_MESSAGE_PREFIX = "EXTERNAL: "


@dataclass(frozen=True)
class Line:
    """One line of the conversation.

    Attributes:
        kind: ``customer``, ``assistant``, ``agent`` or ``event`` (Rasa's own
            messages, e.g. a closed ticket).
        text: What was said.
        timestamp: Seconds since the epoch (Rasa's event timestamp).
        intent: The customer message's intent (customer lines only).
        confidence: Its confidence.
        sentiment: Its sentiment label.
        negative: Its P(negative), the sparkline's value.
        agent: The agent's name (agent lines).
    """

    kind: str
    text: str
    timestamp: float
    intent: str | None = None
    confidence: float | None = None
    sentiment: str | None = None
    negative: float | None = None
    agent: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def lines(events: Iterable[Mapping[str, Any]]) -> list[Line]:
    """The readable lines of a tracker's ``events`` (actions, slots and the rest left out)."""
    result: list[Line] = []
    for event in events:
        kind, text = event.get("event"), str(event.get("text") or "")
        timestamp = _number(event.get("timestamp")) or 0.0
        if kind == "user":
            if text.startswith(EXTERNAL_MESSAGE_PREFIX):
                intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
                result.append(Line("event", str(intent or text), timestamp))
                continue
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            sentiment = parse.get("sentiment") or {}
            scores = sentiment.get("scores") or {}
            result.append(Line("customer", text, timestamp, intent=intent.get("name"),
                               confidence=_number(intent.get("confidence")),
                               sentiment=sentiment.get("label"),
                               negative=_number(scores.get("negative"))))
        elif kind == "bot" and text:
            agent = (event.get("metadata") or {}).get("agent")
            result.append(Line("agent" if agent else "assistant", text, timestamp,
                               agent=str(agent) if agent else None))
        elif kind == "agent" and text:  # Rasa's AgentUttered, from other tools
            result.append(Line("agent", text, timestamp, agent="agent"))
    return result


def sparkline(values: Iterable[float], width: int = 120, height: int = 24) -> str:
    """An inline SVG of ``values`` in [0, 1] (the customer's P(negative) per turn).

    Higher is angrier; an empty series is a flat grey line. Only numbers go into
    the markup, so it needs no escaping.
    """
    points = [min(max(float(v), 0.0), 1.0) for v in values]
    label = "no sentiment yet" if not points else (
        f"negative sentiment per message, last {points[-1]:.2f}")
    if not points:
        body = (f'<line x1="0" y1="{height - 2}" x2="{width}" y2="{height - 2}" '
                f'stroke="#bbb" stroke-width="1"/>')
    else:
        # One message is a short flat line, not an invisible single-point polyline.
        drawn = points * 2 if len(points) == 1 else points
        step = width / (len(drawn) - 1)
        coordinates = " ".join(f"{i * step:.1f},{(1 - v) * (height - 4) + 2:.1f}"
                               for i, v in enumerate(drawn))
        last_x, last_y = coordinates.split()[-1].split(",")
        colour = "#c0392b" if points[-1] >= 0.5 else "#2e86c1"
        body = (f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{coordinates}"/>'
                f'<circle cx="{last_x}" cy="{last_y}" r="2.5" fill="{colour}"/>')
    return (f'<svg class="sparkline" role="img" aria-label="{label}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}">{body}</svg>')
