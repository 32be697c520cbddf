"""The Rasa input channel behind the DingTalk Stream bridge: ``DingTalkStreamInput``.

Use it from a credentials file::

    bot.dingtalk_stream.channel.DingTalkStreamInput:
      bridge_secret: ${DINGTALK_STREAM_BRIDGE_SECRET}

Routes: ``GET /webhooks/dingtalk_stream/`` (health) and ``POST
/webhooks/dingtalk_stream/message`` (the bridge's forwarded messages).

How a message flows: the bridge (:mod:`bot.dingtalk_stream.bridge`) receives a robot
message from DingTalk over the SDK's WebSocket and POSTs its JSON here, signed with the
shared secret (:mod:`bot.dingtalk_stream.signing`). A wrong or stale signature gets 401
and nothing reaches Rasa. The body is parsed by the webhook connector's parser
(:func:`bot.dingtalk.message.parse_payload`), so both DingTalk modes share conversation
ids (``dingtalk:<staff id>``, per group in group chats) and ``verified_identity``
(``{"channel": "dingtalk", "external_id": <staff id>}``). Rasa handles the message while
the request waits; the replies, rendered as DingTalk messages the way the webhook
connector renders them (:class:`bot.dingtalk.output.DingTalkRendering`), come back in
the answer ``{"messages": [...]}`` and the bridge sends them through the SDK.

This module runs in Rasa's environment and never imports the SDK.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.dingtalk.auth import RecentMessageIds
from bot.dingtalk.channel import ONLY_TEXT_REPLY
from bot.dingtalk.message import (
    DingTalkMessage,
    DingTalkPayloadError,
    parse_payload,
    text_message,
)
from bot.dingtalk.output import (
    DEFAULT_SEND_TIMEOUT_S,
    DINGTALK_WEBHOOK_ORIGINS,
    DingTalkRendering,
    is_allowed_webhook,
)
from bot.dingtalk.push import DingTalkPushOutput
from bot.dingtalk.sessions import RecentWebhooks
from bot.dingtalk_stream.signing import (
    DEFAULT_WINDOW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BridgeSignatureError,
    secret_problem,
    verify,
)
from bot.trust import VERIFIED_IDENTITY

logger = logging.getLogger(__name__)

CREDENTIALS_KEY = "bot.dingtalk_stream.channel.DingTalkStreamInput"
# The identity's channel: a staff id is the same user in both DingTalk modes, so one
# channel_identities row (actions/ownership.py) links them in either.
IDENTITY_CHANNEL = "dingtalk"


@dataclass(frozen=True)
class DingTalkStreamConfig:
    """The channel's settings, from its credentials block.

    Attributes:
        bridge_secret: The secret shared with the bridge (at least 32 bytes).
        timestamp_window_s: How far a forwarded request's timestamp may be from now.
        send_timeout_s: Timeout of one message pushed without an incoming message
            (a human agent's reply, see :meth:`DingTalkStreamInput.get_output_channel`).
    """

    bridge_secret: str = field(repr=False)
    timestamp_window_s: float = DEFAULT_WINDOW_S
    send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> DingTalkStreamConfig:
        """Reads and checks the credentials block.

        Args:
            credentials: The block under ``bot.dingtalk_stream.channel.DingTalkStreamInput:``.

        Returns:
            The settings.

        Raises:
            InvalidConfigException: The secret is missing or short, a number is not a
                positive number of seconds, or a key is unknown; the message names the
                key, the value (never the secret's) and the fix.
        """
        # Not a mapping (an empty block is None): Rasa would hide an AttributeError.
        credentials = credentials if isinstance(credentials, dict) else {}
        unknown = sorted(set(credentials) - {"bridge_secret", "timestamp_window_s",
                                             "send_timeout_s"})
        if unknown:
            raise InvalidConfigException(
                f"The DingTalk Stream channel does not know {', '.join(map(repr, unknown))}; "
                f"under `{CREDENTIALS_KEY}:` use bridge_secret, timestamp_window_s and "
                f"send_timeout_s only.")
        secret = credentials.get("bridge_secret")
        problem = (secret_problem(secret) if secret is None or isinstance(secret, str)
                   else "it is not a string")
        if problem:
            raise InvalidConfigException(
                f"The DingTalk Stream channel's 'bridge_secret' cannot be used: {problem}. "
                f"Put `bridge_secret: ${{DINGTALK_STREAM_BRIDGE_SECRET}}` under "
                f"`{CREDENTIALS_KEY}:` and export DINGTALK_STREAM_BRIDGE_SECRET, the same "
                f"value as the bridge's, at least 32 bytes (`openssl rand -hex 32`).")
        return cls(bridge_secret=secret.strip(),
                   timestamp_window_s=_seconds(credentials, "timestamp_window_s",
                                               DEFAULT_WINDOW_S),
                   send_timeout_s=_seconds(credentials, "send_timeout_s",
                                           DEFAULT_SEND_TIMEOUT_S))


def _seconds(credentials: dict[str, Any], key: str, default: float) -> float:
    value = credentials.get(key)
    if value is None:
        return default
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not 0 < number < math.inf:  # also catches NaN
        raise InvalidConfigException(
            f"The DingTalk Stream channel's '{key}' must be a positive number of seconds, "
            f"not {value!r}; fix it under `{CREDENTIALS_KEY}:` or remove it for the "
            f"default ({default:g}).")
    return number


class CollectedReplies(DingTalkRendering):
    """Keeps the replies of one message as DingTalk messages, for the HTTP answer.

    Attributes:
        messages: The DingTalk messages (``{"msgtype": ..., ...}``), in order.
    """

    def __init__(self) -> None:
        """Creates an empty collector."""
        self.messages: list[dict[str, Any]] = []

    async def deliver(self, recipient_id: str, payload: dict[str, Any]) -> bool:
        """Keeps ``payload``; the bridge sends it.

        Args:
            recipient_id: The conversation (the bridge answers the message's own).
            payload: The DingTalk message.

        Returns:
            ``True``.
        """
        self.messages.append(payload)
        return True


class DingTalkStreamInput(InputChannel):
    """Receives the DingTalk Stream bridge's signed messages and answers with the replies."""

    def __init__(self, config: DingTalkStreamConfig, *,
                 webhook_origins: Iterable[str] = DINGTALK_WEBHOOK_ORIGINS,
                 clock: Callable[[], float] = time.time) -> None:
        """Creates the channel.

        Args:
            config: The settings.
            webhook_origins: Origins a ``sessionWebhook`` must have to be kept for
                pushed messages (tests use a local server).
            clock: Seconds since the epoch (for tests).
        """
        self.config = config
        self.webhook_origins = tuple(webhook_origins)
        self.clock = clock
        # DingTalk may deliver a message again when its ACK is late (the bridge ACKs
        # after Rasa answered): each msgId is answered once. A request stays valid for
        # its window either side of now, hence twice the window.
        self.recent_ids = RecentMessageIds(2 * config.timestamp_window_s)
        self.webhooks = RecentWebhooks()

    @classmethod
    def name(cls) -> str:
        """The channel name, also the URL prefix: ``/webhooks/dingtalk_stream/``."""
        return "dingtalk_stream"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> DingTalkStreamInput:
        """Creates the channel from its credentials block.

        Args:
            credentials: The block under ``bot.dingtalk_stream.channel.DingTalkStreamInput:``.

        Returns:
            The channel.

        Raises:
            InvalidConfigException: See :meth:`DingTalkStreamConfig.from_credentials`.
        """
        return cls(DingTalkStreamConfig.from_credentials(credentials))

    def get_output_channel(self) -> DingTalkPushOutput:
        """Reaches conversations without an incoming message (a human agent's reply).

        The bridge only answers messages, so a pushed message goes from Rasa straight
        to the conversation's latest unexpired ``sessionWebhook`` on DingTalk's host,
        as the webhook connector's pushes do; without one it is dropped with a warning.

        Returns:
            The output channel; it finds the conversation by the recipient id.
        """
        return DingTalkPushOutput(self.webhooks, None, timeout_s=self.config.send_timeout_s,
                                  clock=self.clock)

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        """The message's DingTalk fields and the sender as ``verified_identity``.

        Only requests whose signature verified get here: the bridge received the
        message over DingTalk's authenticated connection.

        Args:
            request: A request that :meth:`blueprint` accepted.

        Returns:
            The metadata, or ``None`` when the request carries no parsed message.
        """
        message: DingTalkMessage | None = getattr(request.ctx, "dingtalk_message", None)
        if message is None:
            return None
        return {**message.metadata(),
                VERIFIED_IDENTITY: {"channel": IDENTITY_CHANNEL,
                                    "external_id": message.external_id}}

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
                  ) -> Blueprint:
        """The routes: ``GET /`` (health) and ``POST /message`` (the bridge's messages).

        Args:
            on_new_message: Rasa's handler of a user message.

        Returns:
            The blueprint, mounted under ``/webhooks/dingtalk_stream``.
        """
        stream_webhook = Blueprint("dingtalk_stream_webhook", __name__)

        @stream_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @stream_webhook.route("/message", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self._receive(request, on_new_message)

        return stream_webhook

    async def _receive(self, request: Request,
                       on_new_message: Callable[[UserMessage], Awaitable[Any]]
                       ) -> HTTPResponse:
        try:
            verify(request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER),
                   request.body, self.config.bridge_secret,
                   now_ms=round(self.clock() * 1000), window_s=self.config.timestamp_window_s)
        except BridgeSignatureError as error:
            logger.warning("DingTalk Stream: refused a request: %s", error)
            return response.json({"error": str(error)}, status=401)
        try:
            message = parse_payload(request.body)
        except DingTalkPayloadError as error:
            logger.warning("DingTalk Stream: malformed message: %s", error)
            return response.json({"error": str(error)}, status=400)
        if self.recent_ids.seen(message.msg_id, self.clock()):
            logger.info("DingTalk Stream: message %s was delivered again; answered once",
                        message.msg_id)
            return response.json({"error": "message already received"}, status=409)

        if is_allowed_webhook(message.session_webhook, self.webhook_origins):
            self.webhooks.remember(message.rasa_sender_id, message.session_webhook,
                                   message.session_webhook_expires_ms)
        if message.text is None:
            return response.json({"messages": [text_message(ONLY_TEXT_REPLY)]})
        if not message.text:  # a bare @mention has no text: nothing to answer
            return response.json({"messages": []})
        request.ctx.dingtalk_message = message
        replies = CollectedReplies()
        try:
            await on_new_message(UserMessage(
                message.text, replies, message.rasa_sender_id, input_channel=self.name(),
                message_id=message.msg_id, metadata=self.get_metadata(request)))
        except asyncio.CancelledError:  # as Rasa's REST channel: answer what was collected
            logger.error("DingTalk Stream: handling message %s timed out", message.msg_id)
        except Exception:  # noqa: BLE001 - the bridge still gets the replies collected so far
            logger.exception("DingTalk Stream: handling message %s failed", message.msg_id)
            if not replies.messages:
                return response.json({"error": "the assistant failed"}, status=500)
        return response.json({"messages": replies.messages})
