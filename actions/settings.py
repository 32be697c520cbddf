"""The action server's settings: one typed object, read once from the environment.

Every setting has a default that works on a fresh clone (SQLite next to the
project, the Rasa server on localhost). Deployments override them with
environment variables::

    SHOP_DATABASE_URL   sqlite+aiosqlite:///path/shop.db or postgresql+asyncpg://...
    RASA_URL            the Rasa server whose /model/parse routes tickets
    RASA_TOKEN          its --auth-token, when it has one
    FAQ_THRESHOLD       cosine similarity below which an FAQ answer is not given
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from actions.exceptions import SettingsError

ROOT = Path(__file__).resolve().parents[1]

# The single-turn escalation threshold on the shipped sentiment model's calibrated
# intensity: the best F1 of "escalate" against "strongly negative" on its held-out
# validation messages (benchmarks/results/sentiment_v2.json, "escalation").
STRONG_INTENSITY = 0.708


@dataclass(frozen=True)
class EscalationRules:
    """When a conversation goes to a human because of the customer's mood.

    Attributes:
        strong_intensity: A single negative turn whose calibrated sentiment intensity
            (0 neutral .. 1 furious, from ``SentimentAnalyzer``) reaches this
            escalates. Measured in ``benchmarks/sentiment_v2.py``; a model without
            intensity never triggers this rule.
        negative_score: A turn counts as negative from this negative score.
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
                raise SettingsError(f"{name}={value!r}: use a number in (0, 1]")
        if isinstance(self.negative_turns, bool) or not isinstance(self.negative_turns, int) \
                or self.negative_turns < 1:
            raise SettingsError(f"negative_turns={self.negative_turns!r}: use an integer >= 1")


@dataclass(frozen=True)
class Settings:
    """What the actions are configured with.

    Attributes:
        database_url: SQLAlchemy async URL of the shop database.
        seed_demo_data: Fill a new, empty database with the demo shop.
        rasa_url: Base URL of the Rasa server (for /model/parse).
        rasa_token: The Rasa server's auth token, if any.
        parse_timeout_s: Timeout of one /model/parse call (one retry follows).
        knowledge_base: The FAQ file (questions and answers).
        faq_model: Sentence-transformers model directory; empty for the packaged MiniLM.
        faq_threshold: Minimum cosine similarity for an FAQ answer.
        escalation: Sentiment rules for the ticket's priority.
    """

    database_url: str = f"sqlite+aiosqlite:///{ROOT / 'shop.db'}"
    seed_demo_data: bool = True
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = ""
    parse_timeout_s: float = 5.0
    knowledge_base: Path = ROOT / "actions" / "knowledge_base.yml"
    faq_model: str = ""
    faq_threshold: float = 0.45
    escalation: EscalationRules = field(default_factory=EscalationRules)

    def __post_init__(self) -> None:
        if not self.database_url or "://" not in self.database_url:
            raise SettingsError(
                f"SHOP_DATABASE_URL={self.database_url!r}: use an SQLAlchemy async URL such "
                "as sqlite+aiosqlite:///shop.db or postgresql+asyncpg://user@host/shop")
        if not self.rasa_url.startswith(("http://", "https://")):
            raise SettingsError(f"RASA_URL={self.rasa_url!r}: use http://host:port")
        if not 0 < self.parse_timeout_s <= 60:
            raise SettingsError(
                f"RASA_PARSE_TIMEOUT={self.parse_timeout_s!r}: use seconds in (0, 60]")
        if not 0.0 < self.faq_threshold < 1.0:
            raise SettingsError(f"FAQ_THRESHOLD={self.faq_threshold!r}: use a number in (0, 1)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from environment variables, defaults for the ones not set."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        names = {"SHOP_DATABASE_URL": "database_url", "RASA_URL": "rasa_url",
                 "RASA_TOKEN": "rasa_token", "FAQ_MODEL": "faq_model"}
        for variable, name in names.items():
            if env.get(variable):
                kwargs[name] = env[variable]
        numbers = {"RASA_PARSE_TIMEOUT": "parse_timeout_s", "FAQ_THRESHOLD": "faq_threshold"}
        for variable, name in numbers.items():
            if env.get(variable):
                try:
                    kwargs[name] = float(env[variable])
                except ValueError:
                    raise SettingsError(f"{variable}={env[variable]!r}: use a number") from None
        if env.get("SHOP_KNOWLEDGE_BASE"):
            kwargs["knowledge_base"] = Path(env["SHOP_KNOWLEDGE_BASE"])
        if env.get("SHOP_SEED_DEMO_DATA"):
            kwargs["seed_demo_data"] = env["SHOP_SEED_DEMO_DATA"].lower() not in {"0", "false",
                                                                                 "no"}
        return cls(**kwargs)  # type: ignore[arg-type]

    def redacted(self) -> dict[str, object]:
        """The settings for a log line, without the token or database password."""
        shown: dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "rasa_token":
                value = "***" if value else ""
            elif item.name == "database_url":
                value = _without_password(str(value))
            shown[item.name] = value if isinstance(value, (int, float, str, bool)) else str(value)
        return shown


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
