"""Sending the bot's replies to DingTalk.

:class:`DingTalkRendering` turns Rasa's responses into DingTalk messages; its
subclasses deliver them. :class:`DingTalkOutput` POSTs them with aiohttp to the
``sessionWebhook`` of the message they answer (DingTalk's send API for that
conversation); :class:`~bot.dingtalk.push.DingTalkPushOutput` reaches conversations
without an incoming message. The request body that names the ``sessionWebhook`` is not
signed, so :func:`is_allowed_webhook` keeps replies to DingTalk's own hosts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from rasa.core.channels.channel import OutputChannel

from bot.dingtalk.message import markdown_message, text_message

# The package's logger, not __name__: log configuration and the logger name in log
# lines stay "bot.dingtalk", as before the package was split into modules.
logger = logging.getLogger("bot.dingtalk")

DEFAULT_SEND_TIMEOUT_S = 10.0
# Where a sessionWebhook may point: the body is not signed, so this guards
# against being made to POST replies to an arbitrary URL.
DINGTALK_WEBHOOK_ORIGINS = ("https://oapi.dingtalk.com",)


def is_allowed_webhook(url: str, origins: Iterable[str] = DINGTALK_WEBHOOK_ORIGINS) -> bool:
    """Whether ``url`` has one of the ``origins`` (``scheme://host[:port]``).

    Args:
        url: A ``sessionWebhook``.
        origins: Allowed origins, e.g. ``"https://oapi.dingtalk.com"``.

    Returns:
        ``True`` when scheme, host and port match an origin and the URL carries
        no user name or password.
    """
    try:
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port or _default_port(parts.scheme))
        if parts.username is not None or parts.password is not None:
            return False
        for origin in origins:
            allowed = urlsplit(origin)
            if key == (allowed.scheme, allowed.hostname,
                       allowed.port or _default_port(allowed.scheme)):
                return True
    except ValueError:  # e.g. a port that is not a number
        return False
    return False


def _default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme)


class DingTalkRendering(OutputChannel):
    """Renders Rasa's responses as DingTalk messages; subclasses deliver them.

    DingTalk shows no buttons for these messages: buttons become a list of their
    titles, images a markdown message.
    """

    @classmethod
    def name(cls) -> str:
        """The channel name."""
        return "dingtalk"

    async def deliver(self, recipient_id: str, payload: dict[str, Any]) -> bool:
        """Sends one DingTalk message (``{"msgtype": ..., ...}``) to a conversation.

        Args:
            recipient_id: The Rasa sender id of the conversation.
            payload: The message, as DingTalk's send API takes it.

        Returns:
            Whether DingTalk accepted it.
        """
        raise NotImplementedError

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Sends a text message."""
        await self.deliver(recipient_id, text_message(text))

    async def send_text_with_buttons(self, recipient_id: str, text: str,
                                     buttons: list[dict[str, Any]], **kwargs: Any) -> None:
        """Sends the text and the button titles as a list; users type their choice."""
        lines = [text, *(f"• {button.get('title', '')}" for button in buttons)]
        await self.send_text_message(recipient_id, "\n".join(lines))

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Sends an image as a markdown message."""
        await self.deliver(recipient_id, markdown_message("image", f"![image]({image})"))

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any],
                               **kwargs: Any) -> None:
        """Sends ``custom`` as is when it is a DingTalk message, else as text."""
        if isinstance(json_message, dict) and isinstance(json_message.get("msgtype"), str):
            await self.deliver(recipient_id, json_message)
        else:
            await super().send_custom_json(recipient_id, json_message, **kwargs)


class DingTalkOutput(DingTalkRendering):
    """Sends the bot's replies to one conversation through its ``sessionWebhook``.

    Failures (timeouts, HTTP errors, DingTalk ``errcode``) are logged and dropped:
    a reply that cannot be delivered must not fail the conversation.
    """

    def __init__(self, session_webhook: str, *,
                 timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
                 expires_at_ms: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """Creates the channel.

        Args:
            session_webhook: The message's ``sessionWebhook``.
            timeout_s: Total timeout of one send.
            expires_at_ms: ``sessionWebhookExpiredTime``; later sends are skipped.
            clock: Seconds since the epoch (for tests).
        """
        self.session_webhook = session_webhook
        self.timeout_s = timeout_s
        self.expires_at_ms = expires_at_ms
        self.clock = clock

    async def send_payload(self, payload: dict[str, Any]) -> bool:
        """POSTs one DingTalk message (``{"msgtype": ..., ...}``) to the session.

        Args:
            payload: The message, as DingTalk's send API takes it.

        Returns:
            Whether DingTalk accepted it.
        """
        msgtype = payload.get("msgtype")
        if self.expires_at_ms is not None and self.clock() * 1000 > self.expires_at_ms:
            logger.warning("DingTalk: the session webhook expired; %s reply dropped", msgtype)
            return False
        # The URL carries the session token: log its host only.
        host = urlsplit(self.session_webhook).hostname
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(self.session_webhook, json=payload) as reply:
                    body = await reply.text()
                    status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.warning("DingTalk: sending a %s reply to %s failed: %s", msgtype, host,
                           type(error).__name__)
            return False
        if status != 200:
            logger.warning("DingTalk: %s answered HTTP %s to a %s reply", host, status, msgtype)
            return False
        try:
            result = json.loads(body)
        except ValueError:
            result = None
        if not isinstance(result, dict) or result.get("errcode", 0) != 0:
            errcode = result.get("errcode") if isinstance(result, dict) else None
            errmsg = result.get("errmsg") if isinstance(result, dict) else body[:200]
            logger.warning("DingTalk: %s refused a %s reply: errcode=%s errmsg=%s", host,
                           msgtype, errcode, errmsg)
            return False
        return True

    async def deliver(self, recipient_id: str, payload: dict[str, Any]) -> bool:
        """Sends ``payload`` to this session (whoever ``recipient_id`` names).

        Args:
            recipient_id: The Rasa sender id; the session is this channel's.
            payload: The message.

        Returns:
            Whether DingTalk accepted it.
        """
        return await self.send_payload(payload)
