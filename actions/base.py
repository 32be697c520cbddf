"""The base of every action that uses the shop's services."""

from __future__ import annotations

import logging
from abc import ABCMeta, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.exceptions import BackendError
from actions.services import Services, default_services
from actions.texts import EN, TEXTS, say

logger = logging.getLogger(__name__)

# The English text, for callers that quote it; actions send it with ``say``.
BACKEND_DOWN_TEXT = TEXTS["backend_down"][EN]


class ServiceAction(Action, metaclass=ABCMeta):
    """An action with ``Services`` (the default ones when rasa-sdk creates it).

    Subclasses implement ``serve``; ``run`` turns a database failure into a
    clear message for the customer (in their language) and an error in the log,
    never a crash.
    Abstract, so that rasa-sdk does not register it as an action itself.
    """

    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    @abstractmethod
    def name(self) -> str:
        """The action's name in the domain."""

    @abstractmethod
    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        """The action's work; may raise ``BackendError``."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        try:
            return await self.serve(dispatcher, tracker, domain)
        except BackendError as error:
            logger.error("%s failed for conversation %s: %s", self.name(), tracker.sender_id,
                         error)
            say(dispatcher, tracker, "backend_down")
            return []
