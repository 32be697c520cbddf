"""The action server's settings: one typed object, read once from the environment.

Every setting has a default that works on a fresh clone (SQLite next to the
project, the Rasa server on localhost). Deployments override them with
environment variables::

    SHOP_DATABASE_URL   sqlite+aiosqlite:///path/shop.db or postgresql+asyncpg://...
    RASA_URL            the Rasa server whose /model/parse routes tickets
    RASA_JWT_SECRET     its JWT secret (the calls send short-lived Bearer tokens)
    FAQ_THRESHOLD       cosine similarity below which an FAQ answer is not given
    FAQ_MODEL_ZH        the multilingual encoder for Chinese FAQ questions (default:
                        assets/encoders/multilingual-e5-small, `make multilingual-encoder`)
    FAQ_THRESHOLD_ZH    FAQ_THRESHOLD for Chinese questions (that encoder's own scale)
    SHOP_PROOF_ATTEMPTS failed ownership proofs (e-mail or postcode) before a lock
    SHOP_PROOF_LOCK_S   how long that lock lasts, per conversation and per order
    RASA_CONFIG         the Rasa config.yml whose SentimentEscalationPolicy options
                        set the tickets' priorities (default: the project's)
    HANDOFF_TIMEOUT_S   seconds a hand-over waits for a colleague's reply before the
                        assistant takes the conversation back (default 900)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from actions.exceptions import SettingsError
from cs_core.api_auth import check_secret
from cs_core.errors import InvalidRule
from cs_core.escalation import EscalationRules, rules_from_config

ROOT = Path(__file__).resolve().parents[1]
# HANDOFF_TIMEOUT_S: from a second to a week.
MAX_HANDOFF_TIMEOUT_S = 7 * 24 * 3600.0
# The Chinese FAQ's encoder, as `make multilingual-encoder` builds it.
DEFAULT_FAQ_MODEL_ZH = ROOT / "assets" / "encoders" / "multilingual-e5-small"
# multilingual-e5's cosine similarities crowd into 0.8-1.0 (its training's low
# temperature), so its threshold is not MiniLM's 0.45. 0.88 accepts 95% of the
# knowledge base's own Chinese paraphrases, each held out in turn and matched
# against the rest of the knowledge base (5th percentile 0.882, median 0.928):
# the rule of the intent classifier's out-of-scope threshold, on the knowledge
# base itself since there are no Chinese validation questions yet.
DEFAULT_FAQ_THRESHOLD_ZH = 0.88

@dataclass(frozen=True)
class Settings:
    """What the actions are configured with.

    Attributes:
        database_url: SQLAlchemy async URL of the shop database.
        seed_demo_data: Fill a new, empty database with the demo shop.
        rasa_url: Base URL of the Rasa server (for /model/parse).
        rasa_jwt_secret: The Rasa server's ``RASA_JWT_SECRET``, if its API has one.
        parse_timeout_s: Timeout of one /model/parse call (one retry follows).
        knowledge_base: The FAQ file (questions and answers).
        faq_model: Sentence-transformers model directory; empty for the packaged MiniLM.
        faq_threshold: Minimum cosine similarity for an FAQ answer.
        faq_model_zh: The multilingual-e5 directory for Chinese FAQ questions; the
            Chinese FAQ is off (with a warning) when there is no model there.
        faq_threshold_zh: ``faq_threshold`` for Chinese questions (e5's own scale).
        proof_attempts: Failed proofs of order ownership, per conversation and per
            order, before both are locked.
        proof_lock_s: Seconds that lock lasts.
        rasa_config: The Rasa ``config.yml`` the escalation rules are read from.
        escalation: Sentiment rules for the ticket's priority: by ``from_env``,
            the escalation policy's options in ``rasa_config``, so that one file
            sets when a hand-over happens and how urgent its ticket is.
        handoff_timeout_s: Seconds a hand-over waits for a colleague's reply; then
            the assistant takes the conversation back (a Rasa reminder, see
            ``actions.handoff``).
    """

    database_url: str = f"sqlite+aiosqlite:///{ROOT / 'shop.db'}"
    seed_demo_data: bool = True
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_jwt_secret: str = ""
    parse_timeout_s: float = 5.0
    knowledge_base: Path = ROOT / "actions" / "knowledge_base.yml"
    faq_model: str = ""
    faq_threshold: float = 0.45
    faq_model_zh: str = str(DEFAULT_FAQ_MODEL_ZH)
    faq_threshold_zh: float = DEFAULT_FAQ_THRESHOLD_ZH
    proof_attempts: int = 5
    proof_lock_s: float = 900.0
    rasa_config: Path = ROOT / "config.yml"
    escalation: EscalationRules = field(default_factory=EscalationRules)
    handoff_timeout_s: float = 900.0

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
        if isinstance(self.proof_attempts, bool) or not isinstance(self.proof_attempts, int) \
                or not 1 <= self.proof_attempts <= 100:
            raise SettingsError(
                f"SHOP_PROOF_ATTEMPTS={self.proof_attempts!r}: use a whole number in [1, 100]")
        if not 0 < self.proof_lock_s <= 86400:
            raise SettingsError(f"SHOP_PROOF_LOCK_S={self.proof_lock_s!r}: use seconds in "
                                "(0, 86400]")
        if not 0.0 < self.faq_threshold < 1.0:
            raise SettingsError(f"FAQ_THRESHOLD={self.faq_threshold!r}: use a number in (0, 1)")
        if not 0.0 < self.faq_threshold_zh < 1.0:
            raise SettingsError(f"FAQ_THRESHOLD_ZH={self.faq_threshold_zh!r}: use a number in "
                                "(0, 1)")
        if not 1.0 <= self.handoff_timeout_s <= MAX_HANDOFF_TIMEOUT_S:
            raise SettingsError(f"HANDOFF_TIMEOUT_S={self.handoff_timeout_s!r}: use seconds "
                                f"from 1 to {MAX_HANDOFF_TIMEOUT_S:.0f} (a week)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from environment variables, defaults for the ones not set."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        names = {"SHOP_DATABASE_URL": "database_url", "RASA_URL": "rasa_url",
                 "RASA_JWT_SECRET": "rasa_jwt_secret", "FAQ_MODEL": "faq_model",
                 "FAQ_MODEL_ZH": "faq_model_zh"}
        for variable, name in names.items():
            if env.get(variable):
                kwargs[name] = env[variable]
        numbers = {"RASA_PARSE_TIMEOUT": "parse_timeout_s", "FAQ_THRESHOLD": "faq_threshold",
                   "FAQ_THRESHOLD_ZH": "faq_threshold_zh", "SHOP_PROOF_LOCK_S": "proof_lock_s",
                   "HANDOFF_TIMEOUT_S": "handoff_timeout_s"}
        for variable, name in numbers.items():
            if env.get(variable):
                try:
                    kwargs[name] = float(env[variable])
                except ValueError:
                    raise SettingsError(f"{variable}={env[variable]!r}: use a number") from None
        if env.get("RASA_JWT_SECRET"):
            try:
                check_secret(env["RASA_JWT_SECRET"])
            except ValueError as error:
                raise SettingsError(str(error)) from None
        if env.get("SHOP_PROOF_ATTEMPTS"):
            try:
                kwargs["proof_attempts"] = int(env["SHOP_PROOF_ATTEMPTS"])
            except ValueError:
                raise SettingsError(f"SHOP_PROOF_ATTEMPTS={env['SHOP_PROOF_ATTEMPTS']!r}: use "
                                    "a whole number") from None
        if env.get("SHOP_KNOWLEDGE_BASE"):
            kwargs["knowledge_base"] = Path(env["SHOP_KNOWLEDGE_BASE"])
        if env.get("RASA_CONFIG"):
            kwargs["rasa_config"] = Path(env["RASA_CONFIG"])
        rasa_config = Path(kwargs.get("rasa_config", cls.rasa_config))  # type: ignore[arg-type]
        try:
            kwargs["escalation"] = rules_from_config(rasa_config)
        except InvalidRule as error:
            raise SettingsError(f"RASA_CONFIG={str(rasa_config)!r}: SentimentEscalationPolicy "
                                f"option {error}") from None
        if env.get("SHOP_SEED_DEMO_DATA"):
            kwargs["seed_demo_data"] = env["SHOP_SEED_DEMO_DATA"].lower() not in {"0", "false",
                                                                                 "no"}
        return cls(**kwargs)  # type: ignore[arg-type]

    def redacted(self) -> dict[str, object]:
        """The settings for a log line, without the secret or database password."""
        shown: dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "rasa_jwt_secret":
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
