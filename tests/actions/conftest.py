"""Factories for action tests: a temporary shop database, trackers, a dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.db import SqlBackend
from actions.exceptions import ParseError
from actions.nlu_client import Parsed
from actions.schema import DEMO_ORDERS
from actions.services import Services
from actions.settings import Settings


class FakeClassifier:
    """``TextClassifier`` that answers from a table (or fails), recording its texts."""

    def __init__(self, parsed: Parsed | None = None) -> None:
        self.parsed = parsed
        self.texts: list[str] = []

    async def parse(self, text: str) -> Parsed:
        self.texts.append(text)
        if self.parsed is None:
            raise ParseError("the Rasa server is down")
        return self.parsed


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"


@pytest.fixture
async def backend(database_url: str) -> AsyncIterator[SqlBackend]:
    """A fresh demo shop in a temporary SQLite file."""
    backend = SqlBackend(database_url, busy_timeout_s=0.2)
    await backend.start()
    yield backend
    await backend.close()


@pytest.fixture
def services(backend: SqlBackend, database_url: str) -> Services:
    return Services(settings=Settings(database_url=database_url), backend=backend,
                    classifier=FakeClassifier())


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


def user_event(text: str, intent: str = "inform", label: str | None = "neutral",
               negative: float = 0.05, timestamp: float = 1_790_000_000.0) -> dict[str, Any]:
    """A rasa-sdk user event whose parse data carries ``sentiment`` like the component's."""
    parse_data: dict[str, Any] = {"text": text, "intent": {"name": intent, "confidence": 0.9},
                                  "entities": []}
    if label is not None:
        rest = (1.0 - negative) / 2
        parse_data["sentiment"] = {"label": label, "confidence": max(negative, rest),
                                   "scores": {"negative": negative, "neutral": rest,
                                              "positive": rest}}
    return {"event": "user", "text": text, "timestamp": timestamp, "parse_data": parse_data}


def bot_event(text: str, timestamp: float = 1_790_000_001.0) -> dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": timestamp}


# The demo shop's order owners: a conversation that proved them all.
DEMO_OWNERS = {order_id: customer for order_id, customer, *_ in DEMO_ORDERS}


def verified_user_event(text: str, customer_id: str | None = None,
                        channel: str = "webchat", external_id: str | None = None
                        ) -> dict[str, Any]:
    """A user event whose metadata carries a channel-verified identity."""
    identity: dict[str, Any] = {"channel": channel}
    if customer_id:
        identity["customer_id"] = customer_id
    if external_id:
        identity["external_id"] = external_id
    return {**user_event(text), "metadata": {"verified_identity": identity}}


@pytest.fixture
def make_tracker() -> Callable[..., Tracker]:
    """Factory: a tracker with the given slots, latest intent, entities and events.

    Unless ``anonymous`` (or the slots name ``verified_orders``), the conversation
    has proved ownership of every demo order, as most action tests need.
    """

    def make(slots: dict[str, Any] | None = None, intent: str = "order_status",
             entities: list[dict] | None = None, text: str = "",
             sender_id: str = "test-user", events: list[dict] | None = None,
             anonymous: bool = False) -> Tracker:
        slots = dict(slots or {})
        if not anonymous:
            slots.setdefault("verified_orders", dict(DEMO_OWNERS))
        return Tracker.from_dict({
            "sender_id": sender_id,
            "slots": slots,
            "latest_message": {"text": text, "intent": {"name": intent, "confidence": 0.9},
                               "entities": entities or []},
            "events": events or [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": None,
        })

    return make


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    """What the bot said (texts, or response names)."""
    return [message.get("text") or message.get("response") for message in dispatcher.messages]
