"""DingTalk outgoing-robot channel (钉钉 企业内部机器人) for Rasa.

Use it from a credentials file::

    bot.dingtalk.DingTalkInput:
      app_secret: ${DINGTALK_APP_SECRET}

Routes: ``GET /webhooks/dingtalk/`` (health) and ``POST /webhooks/dingtalk/webhook``
(the robot's outgoing message URL).

How a message flows:

1. DingTalk POSTs the message with the headers ``timestamp`` (ms) and ``sign``.
   ``sign`` must equal ``base64(HMAC-SHA256(app_secret, f"{timestamp}\\n{app_secret}"))``
   and ``timestamp`` must be within ``timestamp_window_s`` of our clock; otherwise 401.
2. The body is parsed by :func:`parse_payload`; anything else than an outgoing-robot
   message is answered with 400.
3. The webhook answers ``{"msgtype": "empty"}`` at once and Rasa handles the message in
   the background; its replies are POSTed to the message's ``sessionWebhook``
   (DingTalk's send API for this conversation) by :class:`DingTalkOutput`.

The Rasa sender id is ``senderStaffId`` (``senderId`` when DingTalk sends no staff
id, e.g. for users of another organisation); in group chats it is
``"{conversationId}:{user}"`` so that each user has a conversation per group.
Non-text messages (pictures, files, rich text) get :data:`ONLY_TEXT_REPLY` and do not
reach Rasa.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

# DingTalk documents that a timestamp more than one hour away from now is invalid.
DEFAULT_TIMESTAMP_WINDOW_S = 3600.0
DEFAULT_SEND_TIMEOUT_S = 10.0
# Where a sessionWebhook may point: the body is not signed, so this guards
# against being made to POST replies to an arbitrary URL.
DINGTALK_WEBHOOK_ORIGINS = ("https://oapi.dingtalk.com",)
DEFAULT_REPLAY_CACHE_SIZE = 10_000
ONLY_TEXT_REPLY = "Sorry, I can only read text messages. Please type your question."
EMPTY_REPLY = {"msgtype": "empty"}

CREDENTIALS_KEY = "bot.dingtalk.DingTalkInput"
_TIMESTAMP = re.compile(r"[0-9]{1,16}")  # ASCII digits only: str.isdigit() accepts "²"


class DingTalkPayloadError(ValueError):
    """The request body is not a DingTalk outgoing-robot message."""


class DingTalkSignatureError(ValueError):
    """The request's ``timestamp``/``sign`` headers do not authenticate it."""


@dataclass(frozen=True)
class DingTalkMessage:
    """One message the outgoing robot received.

    Attributes:
        msg_id: ``msgId``, unique per message.
        msgtype: ``text``, ``picture``, ``richText``, ``file``, ...
        text: The text without the surrounding whitespace that the @mention leaves;
            ``None`` for non-text messages.
        conversation_id: ``conversationId``.
        conversation_type: ``"1"`` single chat, ``"2"`` group chat.
        sender_id: ``senderId``, the sender's id as this robot sees it.
        session_webhook: ``sessionWebhook``, the URL that replies are POSTed to.
        sender_staff_id: ``senderStaffId``, the employee id; absent for outsiders.
        sender_nick: ``senderNick``.
        conversation_title: ``conversationTitle`` (group chats).
        chatbot_user_id: ``chatbotUserId``.
        robot_code: ``robotCode`` (the AppKey for internal app robots).
        is_admin: ``isAdmin``.
        create_at_ms: ``createAt``, when the message was sent (ms).
        session_webhook_expires_ms: ``sessionWebhookExpiredTime`` (ms).
    """

    msg_id: str
    msgtype: str
    text: str | None
    conversation_id: str
    conversation_type: str
    sender_id: str
    session_webhook: str
    sender_staff_id: str | None = None
    sender_nick: str = ""
    conversation_title: str = ""
    chatbot_user_id: str = ""
    robot_code: str = ""
    is_admin: bool = False
    create_at_ms: int | None = None
    session_webhook_expires_ms: int | None = None

    @property
    def is_group(self) -> bool:
        """Whether the message comes from a group chat."""
        return self.conversation_type == "2"

    @property
    def rasa_sender_id(self) -> str:
        """The Rasa conversation id: the user, scoped by the group in group chats."""
        user = self.sender_staff_id or self.sender_id
        return f"{self.conversation_id}:{user}" if self.is_group else user

    def metadata(self) -> dict[str, Any]:
        """What the tracker keeps about the message (the sessionWebhook stays out)."""
        return {
            "msg_id": self.msg_id,
            "msgtype": self.msgtype,
            "conversation_id": self.conversation_id,
            "conversation_type": self.conversation_type,
            "conversation_title": self.conversation_title,
            "sender_id": self.sender_id,
            "sender_staff_id": self.sender_staff_id,
            "sender_nick": self.sender_nick,
            "is_admin": self.is_admin,
            "robot_code": self.robot_code,
            "chatbot_user_id": self.chatbot_user_id,
            "create_at_ms": self.create_at_ms,
        }


def _required_str(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise DingTalkPayloadError(f"'{key}' must be a non-empty string")
    return value


def _optional(payload: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    # Lenient on fields we only pass on: a surprising type must not cost a reply.
    value = payload.get(key)
    if isinstance(value, bool) and kind is not bool:
        return default
    return value if isinstance(value, kind) else default


def parse_payload(body: bytes) -> DingTalkMessage:
    """Parses the JSON body DingTalk POSTs to an outgoing robot.

    Args:
        body: The raw request body.

    Returns:
        The message.

    Raises:
        DingTalkPayloadError: The body is not JSON, or not an object with the
            fields a reply needs (``msgtype``, ``msgId``, ``conversationId``,
            ``conversationType``, ``senderId``, ``sessionWebhook``; ``text.content``
            for text messages).
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise DingTalkPayloadError("the body is not JSON") from error
    if not isinstance(payload, dict):
        raise DingTalkPayloadError("the body must be a JSON object")

    msgtype = _required_str(payload, "msgtype")
    conversation_type = payload.get("conversationType")
    if isinstance(conversation_type, int) and not isinstance(conversation_type, bool):
        conversation_type = str(conversation_type)
    if conversation_type not in ("1", "2"):
        raise DingTalkPayloadError("'conversationType' must be \"1\" or \"2\"")

    text = None
    if msgtype == "text":
        content = payload.get("text")
        if not isinstance(content, dict) or not isinstance(content.get("content"), str):
            raise DingTalkPayloadError("a text message needs 'text.content' (a string)")
        text = content["content"].strip()

    return DingTalkMessage(
        msg_id=_required_str(payload, "msgId"),
        msgtype=msgtype,
        text=text,
        conversation_id=_required_str(payload, "conversationId"),
        conversation_type=conversation_type,
        sender_id=_required_str(payload, "senderId"),
        session_webhook=_required_str(payload, "sessionWebhook"),
        sender_staff_id=_optional(payload, "senderStaffId", str, None) or None,
        sender_nick=_optional(payload, "senderNick", str, ""),
        conversation_title=_optional(payload, "conversationTitle", str, ""),
        chatbot_user_id=_optional(payload, "chatbotUserId", str, ""),
        robot_code=_optional(payload, "robotCode", str, ""),
        is_admin=_optional(payload, "isAdmin", bool, False),
        create_at_ms=_optional(payload, "createAt", int, None),
        session_webhook_expires_ms=_optional(payload, "sessionWebhookExpiredTime", int, None),
    )


def sign(timestamp_ms: int | str, secret: str) -> str:
    """DingTalk's signature of a timestamp.

    Args:
        timestamp_ms: The ``timestamp`` header, milliseconds since the epoch.
        secret: The robot's AppSecret.

    Returns:
        ``base64(HMAC-SHA256(key=secret, msg=f"{timestamp_ms}\\n{secret}"))``.
    """
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(timestamp: str | None, signature: str | None, secret: str, *,
           now_ms: int | None = None,
           window_s: float = DEFAULT_TIMESTAMP_WINDOW_S) -> None:
    """Checks the ``timestamp`` and ``sign`` headers of an outgoing-robot request.

    Args:
        timestamp: The ``timestamp`` header (ms), or ``None`` when absent.
        signature: The ``sign`` header, or ``None`` when absent.
        secret: The robot's AppSecret.
        now_ms: The current time (ms); the system clock when ``None``.
        window_s: How far the timestamp may be from now, into the past or the future.

    Raises:
        DingTalkSignatureError: A header is missing or malformed, the timestamp is
            outside the window, or the signature is wrong.
    """
    if not timestamp or not signature:
        raise DingTalkSignatureError("missing 'timestamp' or 'sign' header")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise DingTalkSignatureError("malformed 'timestamp' header")
    now_ms = round(time.time() * 1000) if now_ms is None else now_ms
    # Both directions: a far-future timestamp would stay valid for a long time.
    if abs(now_ms - int(timestamp)) > window_s * 1000:
        raise DingTalkSignatureError("'timestamp' is outside the accepted window")
    if not hmac.compare_digest(sign(timestamp, secret).encode(), signature.encode()):
        raise DingTalkSignatureError("wrong 'sign'")


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


class RecentMessageIds:
    """The msgIds seen within a time window, at most ``max_size`` of them.

    When full, the oldest id is forgotten first; an exact replay is then only
    caught while its id is still remembered.
    """

    def __init__(self, ttl_s: float, max_size: int = DEFAULT_REPLAY_CACHE_SIZE) -> None:
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, msg_id: str, now: float) -> bool:
        """Whether ``msg_id`` was seen within the window; remembers it if not.

        Args:
            msg_id: The message id.
            now: The current time (s).
        """
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)
        if msg_id in self._expiry:
            return True
        self._expiry[msg_id] = now + self.ttl_s
        while len(self._expiry) > self.max_size:
            self._expiry.popitem(last=False)
        return False


class DingTalkOutput(OutputChannel):
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

    @classmethod
    def name(cls) -> str:
        """The channel name."""
        return "dingtalk"

    async def send_payload(self, payload: dict[str, Any]) -> bool:
        """POSTs one DingTalk message (``{"msgtype": ..., ...}``) to the session.

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

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Sends a text message."""
        await self.send_payload({"msgtype": "text", "text": {"content": text}})

    async def send_text_with_buttons(self, recipient_id: str, text: str,
                                     buttons: list[dict[str, Any]], **kwargs: Any) -> None:
        """Sends the text and the button titles as a list; users type their choice."""
        lines = [text, *(f"• {button.get('title', '')}" for button in buttons)]
        await self.send_text_message(recipient_id, "\n".join(lines))

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Sends an image as a markdown message."""
        await self.send_payload({"msgtype": "markdown",
                                 "markdown": {"title": "image", "text": f"![image]({image})"}})

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any],
                               **kwargs: Any) -> None:
        """Sends ``custom`` as is when it is a DingTalk message, else as text."""
        if isinstance(json_message, dict) and isinstance(json_message.get("msgtype"), str):
            await self.send_payload(json_message)
        else:
            await super().send_custom_json(recipient_id, json_message, **kwargs)


class DingTalkInput(InputChannel):
    """Receives messages from a DingTalk outgoing robot (企业内部机器人)."""

    def __init__(self, app_secret: str, app_key: str | None = None,
                 timestamp_window_s: float = DEFAULT_TIMESTAMP_WINDOW_S,
                 send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S, *,
                 webhook_origins: Iterable[str] = DINGTALK_WEBHOOK_ORIGINS,
                 replay_cache_size: int = DEFAULT_REPLAY_CACHE_SIZE,
                 clock: Callable[[], float] = time.time) -> None:
        """Creates the channel.

        Args:
            app_secret: The robot's AppSecret; it signs DingTalk's requests.
            app_key: The robot's AppKey; when set, messages whose ``robotCode``
                differs are refused.
            timestamp_window_s: How far a request's timestamp may be from now.
            send_timeout_s: Total timeout of one reply to DingTalk.
            webhook_origins: Origins a ``sessionWebhook`` may have (tests use a
                local server).
            replay_cache_size: How many recent msgIds are remembered to refuse replays.
            clock: Seconds since the epoch (for tests).
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
        self._tasks: set[asyncio.Task] = set()

    @classmethod
    def name(cls) -> str:
        """The channel name, also the URL prefix: ``/webhooks/dingtalk/``."""
        return "dingtalk"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> DingTalkInput:
        """Creates the channel from its credentials.yml block.

        Raises:
            InvalidConfigException: ``app_secret`` is missing or empty, or a
                number is not a positive number.
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
        return cls(
            app_secret=secret.strip(),
            app_key=app_key or None,
            timestamp_window_s=_positive(credentials, "timestamp_window_s",
                                         DEFAULT_TIMESTAMP_WINDOW_S),
            send_timeout_s=_positive(credentials, "send_timeout_s", DEFAULT_SEND_TIMEOUT_S),
        )

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        """The DingTalk fields of the request's message (see DingTalkMessage.metadata)."""
        message = getattr(request.ctx, "dingtalk_message", None)
        return message.metadata() if message is not None else None

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
        """The routes: ``GET /`` (health) and ``POST /webhook`` (DingTalk's messages)."""
        dingtalk_webhook = Blueprint("dingtalk_webhook", __name__)

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
        if self.app_key and message.robot_code and message.robot_code != self.app_key:
            logger.warning("DingTalk: refused a message for another robot")
            return response.json({"error": "message for another robot"}, status=401)
        if not is_allowed_webhook(message.session_webhook, self.webhook_origins):
            logger.warning("DingTalk: refused a sessionWebhook outside %s",
                           ", ".join(self.webhook_origins))
            return response.json({"error": "'sessionWebhook' is not a DingTalk URL"},
                                 status=400)
        if self.recent_ids.seen(message.msg_id, self.clock()):
            logger.warning("DingTalk: refused a replay of message %s", message.msg_id)
            return response.json({"error": "message already received"}, status=401)

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
