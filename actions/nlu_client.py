"""Classifying free text through the Rasa server's HTTP API (``/model/parse``).

The action server holds no model: a complaint's description is sent to the same
Rasa server that parses the conversation, so the ticket is routed by the
assistant's own intent and sentiment classifiers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from actions.exceptions import ParseError
from cs_core.api_auth import bearer_headers, check_secret

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parsed:
    """What the classifiers said about a text."""

    intent: str
    confidence: float
    sentiment: dict[str, Any] | None
    ranking: tuple[tuple[str, float], ...] = ()


class TextClassifier(Protocol):
    """Classifies a text; raises ``ParseError`` when it cannot."""

    async def parse(self, text: str) -> Parsed:
        """Intent and sentiment of ``text``."""


class RasaParseClient:
    """``TextClassifier`` over ``POST {rasa_url}/model/parse``, with a timeout and one retry.

    Args:
        rasa_url: The Rasa server's base URL.
        jwt_secret: Its ``RASA_JWT_SECRET``: each call sends a fresh short-lived
            Bearer token (``cs_core.api_auth``), never the secret itself.
        timeout_s: Timeout of each attempt.
        retries: Further attempts after a failed one.
    """

    def __init__(self, rasa_url: str, *, jwt_secret: str = "", timeout_s: float = 5.0,
                 retries: int = 1) -> None:
        self.url = rasa_url.rstrip("/") + "/model/parse"
        self.jwt_secret = check_secret(jwt_secret) if jwt_secret else ""
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retries = retries

    async def parse(self, text: str) -> Parsed:
        headers = (bearer_headers(self.jwt_secret, username="shop-actions", ttl_s=60)
                   if self.jwt_secret else None)
        last_error: Exception | None = None
        for attempt in range(1 + self.retries):
            try:
                async with aiohttp.ClientSession(timeout=self.timeout) as session:
                    async with session.post(self.url, json={"text": text},
                                            headers=headers) as response:
                        if response.status != 200:
                            raise ParseError(f"/model/parse answered HTTP {response.status}")
                        return parsed_from_json(await response.json())
            except (aiohttp.ClientError, asyncio.TimeoutError, ParseError, ValueError) as error:
                last_error = error
                logger.warning("/model/parse attempt %d failed: %s", attempt + 1,
                               type(error).__name__ if not str(error) else error)
        raise ParseError(f"the Rasa server could not classify the text: {last_error}")


def parsed_from_json(body: Any) -> Parsed:
    """Reads ``/model/parse``'s answer; ``ParseError`` when it has the wrong shape."""
    intent = body.get("intent") if isinstance(body, dict) else None
    if not isinstance(intent, dict) or not isinstance(intent.get("name"), str):
        raise ParseError("/model/parse answered without an intent")
    sentiment = body.get("sentiment")
    ranking = tuple((item["name"], float(item.get("confidence") or 0.0))
                    for item in body.get("intent_ranking") or []
                    if isinstance(item, dict) and isinstance(item.get("name"), str))
    return Parsed(intent=intent["name"], confidence=float(intent.get("confidence") or 0.0),
                  sentiment=sentiment if isinstance(sentiment, dict) else None,
                  ranking=ranking or ((intent["name"], float(intent.get("confidence") or 0)),))
