"""Factories for action tests: trackers, a dispatcher and a fresh demo backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.backend import DemoBackend
from actions.services import Services


@pytest.fixture
def services() -> Services:
    return Services(backend=DemoBackend())


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture
def make_tracker() -> Callable[..., Tracker]:
    """Factory: a tracker with the given slots, latest intent and entities."""

    def make(slots: dict[str, Any] | None = None, intent: str = "order_status",
             entities: list[dict] | None = None, text: str = "",
             sender_id: str = "test-user") -> Tracker:
        return Tracker.from_dict({
            "sender_id": sender_id,
            "slots": slots or {},
            "latest_message": {"text": text, "intent": {"name": intent, "confidence": 0.9},
                               "entities": entities or []},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": None,
        })

    return make


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    """What the bot said (texts, or response names)."""
    return [message.get("text") or message.get("response") for message in dispatcher.messages]
