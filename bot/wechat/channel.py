"""The Rasa input channel of a WeChat official account, and its Sanic blueprint.

:class:`WeChatInput` ties the other modules together: it checks each request and
decrypts it (:mod:`bot.wechat.auth`), parses it (:mod:`bot.wechat.message`), drops
WeChat's retries (:mod:`bot.wechat.dedupe`), answers WeChat at once and hands text
messages to Rasa in the background with a :class:`~bot.wechat.output.WeChatOutput`,
which sends the replies through the customer-service API (:mod:`bot.wechat.api`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.trust import VERIFIED_IDENTITY
from bot.wechat.api import WeChatApi
from bot.wechat.auth import WeChatRequestError, check_query, decrypt
from bot.wechat.config import WeChatConfig
from bot.wechat.dedupe import RecentMessages
from bot.wechat.message import (
    CHANNEL,
    ONLY_TEXT,
    ONLY_TEXT_REPLY,
    TO_RASA,
    WELCOME,
    WELCOME_REPLY,
    WeChatMessage,
    WeChatPayloadError,
    parse,
)
from bot.wechat.output import ButtonChoices, WeChatOutput

logger = logging.getLogger("bot.wechat")

# WeChat takes "success" (or an empty body) as "received, no passive reply"; the
# answers follow as customer-service messages.
RECEIVED = "success"

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class WeChatInput(InputChannel):
    """Receives the messages of a WeChat official account (公众号) at its server URL."""

    def __init__(self, config: WeChatConfig, *, api: WeChatApi | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """Creates the channel.

        Args:
            config: The checked settings (:meth:`WeChatConfig.from_credentials`).
            api: The send API's client; one from ``config`` when ``None``.
            clock: Seconds since the epoch (for tests).
        """
        self.config = config
        self.clock = clock
        self.api = api if api is not None else WeChatApi(
            config.app_id, config.app_secret, api_base=config.api_base,
            timeout_s=config.send_timeout_s, clock=clock)
        # A request stays valid until its timestamp + window, and that timestamp may
        # itself lie up to a window ahead of the moment we first see it.
        self.recent = RecentMessages(2 * config.timestamp_window_s, config.dedupe_cache_size)
        self.choices = ButtonChoices()
        self._tasks: set[asyncio.Task] = set()

    @classmethod
    def name(cls) -> str:
        """The channel name, also the URL prefix: ``/webhooks/wechat/``."""
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WeChatInput:
        """Creates the channel from its credentials block.

        Args:
            credentials: The block under ``bot.wechat.WeChatInput:``.

        Returns:
            The channel.

        Raises:
            InvalidConfigException: The block is incomplete or malformed (see
                :meth:`WeChatConfig.from_credentials`).
        """
        return cls(WeChatConfig.from_credentials(credentials))

    def get_output_channel(self) -> WeChatOutput:
        """The output channel for messages that answer no user message.

        Rasa uses it e.g. for a human agent's reply added with ``POST
        /conversations/<id>/tracker/events?output_channel=latest&execute_side_effects=true``;
        WeChat delivers it while the user's last message is less than 48 hours old.

        Returns:
            The output channel; it finds the user by the recipient id.
        """
        return WeChatOutput(self.api, self.choices)

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        """The message's WeChat fields and, in safe mode, the sender as
        ``verified_identity`` (see :mod:`bot.trust`).

        Only requests whose signature verified get here. In safe mode WeChat's
        signature covers the encrypted body, so the OpenID is WeChat's word. In plain
        mode it covers only the query: anyone who saw one signed URL could post any
        OpenID with it within the timestamp window, so plain-mode users stay
        anonymous (they prove orders like web chat users).

        Args:
            request: A webhook request that :meth:`blueprint` accepted.

        Returns:
            The metadata, or ``None`` when the request carries no parsed message.
        """
        message: WeChatMessage | None = getattr(request.ctx, "wechat_message", None)
        if message is None:
            return None
        metadata = message.metadata()
        if self.config.safe:
            metadata[VERIFIED_IDENTITY] = {"channel": CHANNEL, "external_id": message.openid}
        return metadata

    async def join(self) -> None:
        """Waits until the messages being handled in the background are done."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The routes: ``GET /`` (health), ``GET /webhook`` (WeChat's URL check) and
        ``POST /webhook`` (WeChat's messages).

        Args:
            on_new_message: Rasa's handler of a user message.

        Returns:
            The blueprint, to be mounted under ``/webhooks/wechat``.
        """
        wechat_webhook = Blueprint("wechat_webhook", __name__)

        @wechat_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @wechat_webhook.route("/webhook", methods=["GET"])
        async def verify_url(request: Request) -> HTTPResponse:
            return self._verify_url(request)

        @wechat_webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self._receive(request, on_new_message)

        return wechat_webhook

    def _verify_url(self, request: Request) -> HTTPResponse:
        # The handshake when the URL is saved on the platform: a signed GET whose
        # `echostr` we echo. Official accounts send it unencrypted in every mode.
        query = _query(request)
        try:
            check_query(query, self.config, self.clock())
        except WeChatRequestError as error:
            logger.warning("WeChat: refused a URL check: %s", error)
            return response.text(str(error), status=error.status)
        echostr = query.get("echostr")
        if not echostr:
            return response.text("missing 'echostr'", status=400)
        return response.text(echostr)

    async def _receive(self, request: Request, on_new_message: OnNewMessage) -> HTTPResponse:
        query = _query(request)
        try:
            check_query(query, self.config, self.clock())
            message = parse(decrypt(request.body, query, self.config))
        except WeChatRequestError as error:
            logger.warning("WeChat: refused a request: %s", error)
            return response.text(str(error), status=error.status)
        except WeChatPayloadError as error:
            logger.warning("WeChat: malformed message: %s", error)
            return response.text(str(error), status=400)
        if self.recent.seen(message.dedupe_key, self.clock()):
            # WeChat's retry of a message that is being (or was) handled: "success"
            # stops further retries.
            logger.info("WeChat: %s received again; handled once", message.dedupe_key)
            return response.text(RECEIVED)

        handling = message.handling
        output = WeChatOutput(self.api, self.choices)
        if handling == TO_RASA:
            request.ctx.wechat_message = message
            text = self.choices.resolve(message.rasa_sender_id, message.text or "")
            self._spawn(self._handle(on_new_message, UserMessage(
                text, output, message.rasa_sender_id, input_channel=self.name(),
                message_id=message.msg_id, metadata=self.get_metadata(request))))
        elif handling in (WELCOME, ONLY_TEXT):
            reply = WELCOME_REPLY if handling == WELCOME else ONLY_TEXT_REPLY
            self._spawn(output.send_text_message(message.rasa_sender_id, reply))
        # WeChat waits at most 5 s for this answer: reply at once, Rasa's replies follow.
        return response.text(RECEIVED)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        # Keep a reference: the event loop holds tasks only weakly.
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _handle(on_new_message: OnNewMessage, message: UserMessage) -> None:
        try:
            await on_new_message(message)
        except Exception:
            logger.exception("WeChat: handling message %s failed", message.message_id)


def _query(request: Request) -> dict[str, str]:
    # The first value of each parameter; WeChat sends each once.
    return {key: values[0] for key, values in request.args.items() if values}
