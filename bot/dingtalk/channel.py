"""The Rasa input channel of the DingTalk outgoing robot, and its Sanic blueprint.

:class:`DingTalkInput` ties the other modules together: it checks each request
(:mod:`bot.dingtalk.auth`), parses it (:mod:`bot.dingtalk.message`), answers
DingTalk at once and hands the message to Rasa in the background with a
:class:`~bot.dingtalk.output.DingTalkOutput` for the replies. It remembers each
conversation's ``sessionWebhook`` (:mod:`bot.dingtalk.sessions`) for
:meth:`DingTalkInput.get_output_channel`, which reaches users without an incoming
message (:mod:`bot.dingtalk.push`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.dingtalk.auth import (
    DEFAULT_REPLAY_CACHE_SIZE,
    DEFAULT_TIMESTAMP_WINDOW_S,
    DingTalkSignatureError,
    RecentMessageIds,
    is_for_robot,
    verify,
)
from bot.dingtalk.message import EMPTY_REPLY, DingTalkMessage, DingTalkPayloadError, parse_payload
from bot.dingtalk.output import (
    DEFAULT_SEND_TIMEOUT_S,
    DINGTALK_WEBHOOK_ORIGINS,
    DingTalkOutput,
    is_allowed_webhook,
)
from bot.dingtalk.push import DingTalkPushOutput
from bot.dingtalk.robot_api import DINGTALK_API_BASE, DingTalkRobotApi, is_allowed_api_base
from bot.dingtalk.sessions import DEFAULT_WEBHOOK_CACHE_SIZE, RecentWebhooks
from bot.trust import VERIFIED_IDENTITY

# The package's logger, not __name__: log configuration and the logger name in log
# lines stay "bot.dingtalk", as before the package was split into modules.
logger = logging.getLogger("bot.dingtalk")

ONLY_TEXT_REPLY = "Sorry, I can only read text messages. Please type your question."
CREDENTIALS_KEY = "bot.dingtalk.DingTalkInput"


class DingTalkInput(InputChannel):
    """Receives messages from a DingTalk outgoing robot (企业内部机器人)."""

    def __init__(self, app_secret: str, app_key: str | None = None,
                 timestamp_window_s: float = DEFAULT_TIMESTAMP_WINDOW_S,
                 send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S, *,
                 webhook_origins: Iterable[str] = DINGTALK_WEBHOOK_ORIGINS,
                 replay_cache_size: int = DEFAULT_REPLAY_CACHE_SIZE,
                 api_base: str = DINGTALK_API_BASE,
                 webhook_cache_size: int = DEFAULT_WEBHOOK_CACHE_SIZE,
                 clock: Callable[[], float] = time.time) -> None:
        """Creates the channel.

        Args:
            app_secret: The robot's AppSecret; it signs DingTalk's requests.
            app_key: The robot's AppKey; when set, messages whose ``robotCode``
                differs or is missing are refused, and :meth:`get_output_channel`
                can use the robot API.
            timestamp_window_s: How far a request's timestamp may be from now.
            send_timeout_s: Total timeout of one reply to DingTalk.
            webhook_origins: Origins a ``sessionWebhook`` may have (tests use a
                local server).
            replay_cache_size: How many recent msgIds are remembered to refuse replays.
            api_base: The robot API's origin (``https://api.dingtalk.com``, or a
                loopback stub in tests).
            webhook_cache_size: Of how many conversations the latest
                ``sessionWebhook`` is remembered for :meth:`get_output_channel`.
            clock: Seconds since the epoch (for tests).

        Raises:
            ValueError: ``api_base`` is neither DingTalk's API nor a loopback address.
        """
        self.app_secret = app_secret
        self.app_key = app_key
        self.timestamp_window_s = timestamp_window_s
        self.send_timeout_s = send_timeout_s
        self.webhook_origins = tuple(webhook_origins)
        self.clock = clock
        # A request stays valid until its timestamp + window, and that timestamp
        # may itself lie up to a window ahead of the moment we first see it.
        self.recent_ids = RecentMessageIds(2 * timestamp_window_s, replay_cache_size)
        self.webhooks = RecentWebhooks(webhook_cache_size)
        # The robot API needs the AppKey (appKey, robotCode) besides the AppSecret.
        self.robot_api = (DingTalkRobotApi(app_key, app_secret, api_base=api_base,
                                           timeout_s=send_timeout_s, clock=clock)
                          if app_key else None)
        self._tasks: set[asyncio.Task] = set()

    @classmethod
    def name(cls) -> str:
        """The channel name, also the URL prefix: ``/webhooks/dingtalk/``."""
        return "dingtalk"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> DingTalkInput:
        """Creates the channel from its credentials.yml block.

        Args:
            credentials: The block under ``bot.dingtalk.DingTalkInput:``.

        Returns:
            The channel.

        Raises:
            InvalidConfigException: ``app_secret`` is missing or empty, a number is
                not a positive number, or ``api_base`` is not DingTalk's API.
        """
        # Not a mapping (e.g. an empty block): Rasa would hide an AttributeError.
        credentials = credentials if isinstance(credentials, dict) else {}
        secret = credentials.get("app_secret")
        if not isinstance(secret, str) or not secret.strip():
            raise InvalidConfigException(
                f"The DingTalk channel needs 'app_secret'. Add `app_secret: "
                f"${{DINGTALK_APP_SECRET}}` under `{CREDENTIALS_KEY}:` in the credentials "
                f"file and export DINGTALK_APP_SECRET with the robot's AppSecret "
                f"(DingTalk developer console > your app > Credentials & basic info).")
        app_key = str(credentials.get("app_key") or "").strip()
        api_base = credentials.get("api_base") or DINGTALK_API_BASE
        if not isinstance(api_base, str) or not is_allowed_api_base(api_base.strip()):
            # The AppSecret is sent there: refuse a typo rather than leak it.
            raise InvalidConfigException(
                f"The DingTalk channel's 'api_base' must be {DINGTALK_API_BASE} (or a "
                f"loopback address for a test stub), not {api_base!r}; fix it under "
                f"`{CREDENTIALS_KEY}:` in the credentials file.")
        return cls(
            app_secret=secret.strip(),
            app_key=app_key or None,
            timestamp_window_s=_positive(credentials, "timestamp_window_s",
                                         DEFAULT_TIMESTAMP_WINDOW_S),
            send_timeout_s=_positive(credentials, "send_timeout_s", DEFAULT_SEND_TIMEOUT_S),
            api_base=api_base.strip(),
        )

    def get_output_channel(self) -> DingTalkPushOutput:
        """An output channel that reaches DingTalk conversations without a message.

        Rasa uses it for messages that answer no user message, e.g. a human agent's
        reply added with ``POST /conversations/<id>/tracker/events?output_channel=latest
        &execute_side_effects=true``. It sends to the conversation's latest
        ``sessionWebhook`` while that has not expired, else (single chats, with
        ``app_key`` set) through the robot API, else logs a warning and drops the
        message (see :mod:`bot.dingtalk.push`).

        Returns:
            The output channel; it finds the conversation by the recipient id.
        """
        return DingTalkPushOutput(self.webhooks, self.robot_api, timeout_s=self.send_timeout_s,
                                  clock=self.clock)

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        """The DingTalk fields of the request's message (see DingTalkMessage.metadata)
        and the sender as ``verified_identity`` (see :mod:`bot.trust`).

        Only requests whose signature verified get here, so the sender came from
        DingTalk (within the limits in docs/channels.md).

        Args:
            request: A webhook request that :meth:`blueprint` accepted.

        Returns:
            The metadata, or ``None`` when the request carries no parsed message.
        """
        message = getattr(request.ctx, "dingtalk_message", None)
        if message is None:
            return None
        return {**message.metadata(),
                VERIFIED_IDENTITY: {"channel": self.name(), "external_id": message.external_id}}

    async def join(self) -> None:
        """Waits until the messages being handled in the background are done."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        # Keep a reference: the event loop holds tasks only weakly.
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _handle(on_new_message: Callable[[UserMessage], Awaitable[Any]],
                      message: UserMessage) -> None:
        try:
            await on_new_message(message)
        except Exception:
            logger.exception("DingTalk: handling message %s failed", message.message_id)

    def _output(self, message: DingTalkMessage) -> DingTalkOutput:
        return DingTalkOutput(message.session_webhook, timeout_s=self.send_timeout_s,
                              expires_at_ms=message.session_webhook_expires_ms,
                              clock=self.clock)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
                  ) -> Blueprint:
        """The routes: ``GET /`` (health) and ``POST /webhook`` (DingTalk's messages).

        Args:
            on_new_message: Rasa's handler of a user message.

        Returns:
            The blueprint, to be mounted under ``/webhooks/dingtalk``.
        """
        # The second argument is Sanic's url_prefix, which Rasa's mounting prefix
        # replaces; it keeps the value it had before the split (the module name then).
        dingtalk_webhook = Blueprint("dingtalk_webhook", "bot.dingtalk")

        @dingtalk_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @dingtalk_webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self._receive(request, on_new_message)

        return dingtalk_webhook

    async def _receive(self, request: Request,
                       on_new_message: Callable[[UserMessage], Awaitable[Any]]
                       ) -> HTTPResponse:
        try:
            verify(request.headers.get("timestamp"), request.headers.get("sign"),
                   self.app_secret, now_ms=round(self.clock() * 1000),
                   window_s=self.timestamp_window_s)
        except DingTalkSignatureError as error:
            logger.warning("DingTalk: refused a request: %s", error)
            return response.json({"error": str(error)}, status=401)
        try:
            message = parse_payload(request.body)
        except DingTalkPayloadError as error:
            logger.warning("DingTalk: malformed message: %s", error)
            return response.json({"error": str(error)}, status=400)
        if not is_for_robot(message.robot_code, self.app_key):
            logger.warning("DingTalk: refused a message for another robot, or for none")
            return response.json({"error": "message for another robot"}, status=401)
        if not is_allowed_webhook(message.session_webhook, self.webhook_origins):
            logger.warning("DingTalk: refused a sessionWebhook outside %s",
                           ", ".join(self.webhook_origins))
            return response.json({"error": "'sessionWebhook' is not a DingTalk URL"},
                                 status=400)
        if self.recent_ids.seen(message.msg_id, self.clock()):
            logger.warning("DingTalk: refused a replay of message %s", message.msg_id)
            return response.json({"error": "message already received"}, status=401)

        self.webhooks.remember(message.rasa_sender_id, message.session_webhook,
                               message.session_webhook_expires_ms)
        output = self._output(message)
        if message.text is None:
            self._spawn(output.send_text_message(message.rasa_sender_id, ONLY_TEXT_REPLY))
        elif message.text:  # a bare @mention has no text: nothing to answer
            request.ctx.dingtalk_message = message
            self._spawn(self._handle(on_new_message, UserMessage(
                message.text, output, message.rasa_sender_id, input_channel=self.name(),
                message_id=message.msg_id, metadata=self.get_metadata(request))))
        # DingTalk waits for this answer: reply at once, Rasa's replies follow.
        return response.json(EMPTY_REPLY)


def _positive(credentials: dict[str, Any], key: str, default: float) -> float:
    value = credentials.get(key)
    if value is None:
        return default
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not 0 < number < math.inf:  # also catches NaN
        raise InvalidConfigException(
            f"The DingTalk channel's '{key}' must be a positive number of seconds, "
            f"not {value!r}; fix it under `{CREDENTIALS_KEY}:` in the credentials file.")
    return number
