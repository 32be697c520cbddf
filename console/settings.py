"""The console's settings: one frozen object, read once from the environment.

::

    CONSOLE_HOST / CONSOLE_PORT  where it listens (127.0.0.1:5006)
    SHOP_DATABASE_URL            the shop database (the action server's)
    TRACKER_DATABASE_URL         Rasa's SQL tracker store, read for analytics and
                                 the review inbox (default: tracker.db of make run)
    RASA_URL                     the Rasa server, for conversation events
    RASA_JWT_SECRET              its JWT secret (calls send short-lived Bearer tokens)
    CONSOLE_SESSION_TTL_S        how long an agent stays signed in (8 hours)
    RASA_CONFIG                  the config.yml the review threshold comes from
    RASA_MODEL                   the served model archive, whose measured fallback
                                 threshold the review inbox uses (models/assistant.tar.gz)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cs_core.api_auth import check_secret

ROOT = Path(__file__).resolve().parents[1]


class ConsoleSettingsError(ValueError):
    """An environment variable of the console is unusable (the message names it)."""


@dataclass(frozen=True)
class ConsoleSettings:
    """What the console is configured with.

    Attributes:
        host: The interface it listens on.
        port: Its port.
        shop_database_url: SQLAlchemy async URL of the shop database.
        tracker_database_url: SQLAlchemy async URL of Rasa's SQL tracker store;
            empty to leave analytics and the review inbox without conversations.
        rasa_url: Base URL of the Rasa server.
        rasa_jwt_secret: The Rasa server's ``RASA_JWT_SECRET``.
        session_ttl_s: Seconds an agent's sign-in lasts.
        rasa_config: The Rasa ``config.yml`` (the review inbox's threshold).
        domain: The Rasa ``domain.yml`` (the intents an agent may choose).
        rasa_model: The served model archive (its measured fallback threshold).
        seed_demo_data: Seed the demo shop into a new shop database, as the action
            server does (whichever starts first migrates it).
    """

    host: str = "127.0.0.1"
    port: int = 5006
    shop_database_url: str = f"sqlite+aiosqlite:///{ROOT / 'shop.db'}"
    tracker_database_url: str = f"sqlite+aiosqlite:///{ROOT / 'tracker.db'}"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_jwt_secret: str = ""
    session_ttl_s: float = 8 * 3600.0
    rasa_config: Path = ROOT / "config.yml"
    domain: Path = ROOT / "domain.yml"
    rasa_model: Path = ROOT / "models" / "assistant.tar.gz"
    seed_demo_data: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *,
                 need_rasa: bool = True) -> ConsoleSettings:
        """Settings from environment variables, defaults for the ones not set.

        Args:
            environ: The environment (``os.environ`` when None).
            need_rasa: Whether ``RASA_JWT_SECRET`` must be set (serving; not for
                creating an agent).

        Raises:
            ConsoleSettingsError: A variable is malformed, or ``RASA_JWT_SECRET`` is
                missing or short (the console cannot reach conversations without it).
        """
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        names = {"CONSOLE_HOST": "host", "SHOP_DATABASE_URL": "shop_database_url",
                 "RASA_URL": "rasa_url"}
        for variable, name in names.items():
            if env.get(variable):
                kwargs[name] = env[variable]
        if "TRACKER_DATABASE_URL" in env:
            kwargs["tracker_database_url"] = env["TRACKER_DATABASE_URL"]
        for variable, name, kind in (("CONSOLE_PORT", "port", int),
                                     ("CONSOLE_SESSION_TTL_S", "session_ttl_s", float)):
            if env.get(variable):
                try:
                    kwargs[name] = kind(env[variable])
                except ValueError:
                    raise ConsoleSettingsError(
                        f"{variable}={env[variable]!r}: use a number") from None
        if not 60 <= float(kwargs.get("session_ttl_s", cls.session_ttl_s)) <= 7 * 24 * 3600:
            raise ConsoleSettingsError("CONSOLE_SESSION_TTL_S: use 60 to 604800 seconds")
        for variable, name in (("RASA_CONFIG", "rasa_config"), ("RASA_DOMAIN", "domain"),
                               ("RASA_MODEL", "rasa_model")):
            if env.get(variable):
                kwargs[name] = Path(env[variable])
        if env.get("SHOP_SEED_DEMO_DATA"):
            kwargs["seed_demo_data"] = env["SHOP_SEED_DEMO_DATA"].lower() not in {
                "0", "false", "no"}
        secret = env.get("RASA_JWT_SECRET", "")
        try:
            if secret or need_rasa:
                kwargs["rasa_jwt_secret"] = check_secret(secret)
        except ValueError as error:
            raise ConsoleSettingsError(
                f"{error} (the console calls Rasa's HTTP API with it; make run keeps one "
                f"in .secrets/rasa_jwt_secret)") from None
        return cls(**kwargs)  # type: ignore[arg-type]
