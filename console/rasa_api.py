"""The console's calls to Rasa's HTTP API, each with a fresh admin Bearer token.

- ``tracker``: ``GET /conversations/<id>/tracker`` (the whole conversation);
- ``push``: ``POST /conversations/<id>/tracker/events`` with a ``bot`` event,
  ``execute_side_effects`` and ``output_channel=latest``: Rasa records the agent's
  line in the conversation and sends it through the customer's channel (web chat:
  pushed on the socket; DingTalk: ``bot/dingtalk``'s output channel);
- ``trigger``: ``POST /conversations/<id>/trigger_intent`` with
  ``output_channel=latest`` (``EXTERNAL_ticket_closed``: the hand-over ends).

Sender ids go into the path unencoded except for characters a path cannot hold:
Rasa 3.6 (Sanic 21.12) does not percent-decode route parameters, and namespaced
ids contain ``:``.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any

import aiohttp

from cs_core.api_auth import bearer_headers


class RasaApiError(Exception):
    """Rasa did not do what was asked (down, refused, or answered an error)."""


class RasaApi:
    """Rasa's HTTP API for the console.

    Args:
        url: The Rasa server's base URL.
        jwt_secret: Its ``RASA_JWT_SECRET``.
        timeout_s: Timeout of each call.
    """

    def __init__(self, url: str, jwt_secret: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.jwt_secret = jwt_secret
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    def _conversation(self, sender_id: str) -> str:
        return f"{self.url}/conversations/{urllib.parse.quote(sender_id, safe=':@-_.~')}"

    async def _call(self, method: str, url: str, *, json: Any = None,
                    params: dict[str, str] | None = None) -> Any:
        headers = bearer_headers(self.jwt_secret, username="agent-console", ttl_s=60)
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session:
                async with session.request(method, url, json=json, params=params,
                                           headers=headers) as response:
                    if response.status != 200:
                        raise RasaApiError(f"Rasa answered HTTP {response.status}")
                    return await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise RasaApiError(f"Rasa could not be reached: {type(error).__name__}") from None

    async def tracker(self, sender_id: str) -> dict[str, Any]:
        """The conversation's tracker with all its events."""
        return await self._call("GET", self._conversation(sender_id) + "/tracker",
                                params={"include_events": "ALL"})

    async def push(self, sender_id: str, text: str, agent_name: str) -> None:
        """Records ``text`` as the agent's line and sends it to the customer's channel."""
        event = {"event": "bot", "text": text, "timestamp": time.time(),
                 "metadata": {"agent": agent_name}}
        await self._call("POST", self._conversation(sender_id) + "/tracker/events",
                         json=[event], params={"execute_side_effects": "true",
                                               "output_channel": "latest"})

    async def trigger(self, sender_id: str, intent: str,
                      entities: dict[str, str]) -> dict[str, Any]:
        """Triggers ``intent`` in the conversation, the answers going to its channel."""
        return await self._call("POST", self._conversation(sender_id) + "/trigger_intent",
                                json={"name": intent, "entities": entities},
                                params={"output_channel": "latest"})
