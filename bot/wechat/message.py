"""WeChat's messages: parsing what WeChat POSTs (through wechatpy), and our own texts.

:func:`parse` turns the (decrypted) XML into a :class:`WeChatMessage` with
:func:`wechatpy.parse_message` and checks the fields this channel relies on;
:meth:`WeChatMessage.handling` says what the channel does with it. The channel's own
answers (:data:`ONLY_TEXT_REPLY`, :data:`WELCOME_REPLY`) are here, in Chinese and
English: they are sent without Rasa, so the customer's language is not known yet,
and the Rasa process must not import the action server's texts (``actions/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

from wechatpy import parse_message

from bot.trust import sender_id

CHANNEL = "wechat"

ONLY_TEXT_REPLY = ("抱歉，我目前只能读懂文字消息，请直接输入您的问题。\n"
                   "Sorry, I can only read text messages. Please type your question.")
WELCOME_REPLY = ("您好，欢迎关注！我可以帮您查询订单、物流、退货和退款，请直接输入您的问题。\n"
                 "Hello and welcome! Ask me about your orders, deliveries, returns and refunds.")

# What the channel does with a message (WeChatMessage.handling).
TO_RASA = "rasa"  # a text message: Rasa answers it
WELCOME = "welcome"  # a new follower: WELCOME_REPLY
ONLY_TEXT = "only_text"  # pictures, voice, locations, menu clicks...: ONLY_TEXT_REPLY
IGNORE = "ignore"  # nothing to answer

SUBSCRIBE_EVENTS = frozenset({"subscribe", "subscribe_scan", "subscribe_scan_product"})
# Events that are no question of the user's: WeChat sends them on its own (location
# reports every few seconds when enabled, the results of mass and template messages),
# after the user left (unsubscribe: WeChat refuses messages to them), or for a menu
# link that opened a web page or a QR code scanned by a follower. Answering them
# would be spam.
SILENT_EVENTS = frozenset({"unsubscribe", "location", "view", "scan",
                           "masssendjobfinish", "templatesendjobfinish"})


class WeChatPayloadError(ValueError):
    """The XML is not a WeChat message this channel can read."""


@dataclass(frozen=True)
class WeChatMessage:
    """One message or event from a WeChat user to the official account.

    Attributes:
        msg_type: ``MsgType``: ``text``, ``image``, ``voice``, ``video``,
            ``shortvideo``, ``location``, ``link``, ``event``, ...
        openid: ``FromUserName``, the user's OpenID for this account.
        account: ``ToUserName``, the account's original id (``gh_...``).
        create_time: ``CreateTime``, seconds since the epoch.
        msg_id: ``MsgId`` (messages); ``None`` for events, which have none.
        text: The text of a text message, stripped; ``None`` for other types.
        event: The event type in lower case (``subscribe``, ``click``, ...), or
            ``None`` for messages.
    """

    msg_type: str
    openid: str
    account: str
    create_time: int
    msg_id: str | None = None
    text: str | None = None
    event: str | None = None

    @property
    def rasa_sender_id(self) -> str:
        """The Rasa conversation id: ``wechat:<openid>``."""
        return sender_id(CHANNEL, self.openid)

    @property
    def dedupe_key(self) -> str:
        """What identifies this message among WeChat's retries of it.

        ``MsgId`` for messages; events have none, and WeChat's documentation says to
        tell them apart by ``FromUserName`` and ``CreateTime``.
        """
        if self.msg_id is not None:
            return f"msg:{self.msg_id}"
        return f"event:{self.openid}:{self.create_time}:{self.event}"

    @property
    def handling(self) -> str:
        """What the channel does with it: :data:`TO_RASA`, :data:`WELCOME`,
        :data:`ONLY_TEXT` or :data:`IGNORE`."""
        if self.msg_type == "text":
            return TO_RASA if self.text else IGNORE
        if self.msg_type != "event":
            return ONLY_TEXT
        if self.event in SUBSCRIBE_EVENTS:
            return WELCOME
        if self.event in SILENT_EVENTS:
            return IGNORE
        return ONLY_TEXT

    def metadata(self) -> dict[str, Any]:
        """The message's WeChat fields for the user message's metadata (no text)."""
        return {CHANNEL: {"msg_id": self.msg_id, "create_time": self.create_time,
                          "account": self.account}}


def parse(xml: str) -> WeChatMessage:
    """Reads a message WeChat POSTed (decrypted already in safe mode).

    Args:
        xml: The message, ``<xml><ToUserName>...</xml>``.

    Returns:
        The message.

    Raises:
        WeChatPayloadError: Not XML, or a field this channel needs is missing or has
            the wrong form (e.g. a ``MsgId`` that is not a number).
    """
    try:
        parsed = parse_message(xml)
    except (ExpatError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise WeChatPayloadError(f"not a WeChat message ({type(error).__name__})") from None
    if parsed is None:
        raise WeChatPayloadError("empty message")
    fields: dict[str, Any] = parsed._data  # noqa: SLF001 - the SDK's parsed XML fields
    openid, account = fields.get("FromUserName"), fields.get("ToUserName")
    if not _is_text(openid) or not _is_text(account):
        raise WeChatPayloadError("'FromUserName' and 'ToUserName' must be non-empty text")
    create_time = _number(fields.get("CreateTime"), "CreateTime")
    msg_type = str(fields.get("MsgType")).lower()
    if msg_type == "event":
        event = fields.get("Event")
        if not _is_text(event):
            raise WeChatPayloadError("an event without 'Event'")
        # The SDK renames subscriptions through a QR code (subscribe_scan, ...).
        return WeChatMessage(msg_type, openid, account, create_time, event=event.lower())
    msg_id = str(_number(fields.get("MsgId"), "MsgId"))
    text = None
    if msg_type == "text":
        content = fields.get("Content")
        if content is not None and not isinstance(content, str):
            raise WeChatPayloadError("'Content' must be text")
        text = (content or "").strip()
    return WeChatMessage(msg_type, openid, account, create_time, msg_id=msg_id, text=text)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _number(value: Any, name: str) -> int:
    if (not isinstance(value, str) or not value.isascii() or not value.isdigit()
            or len(value) > 20):
        raise WeChatPayloadError(f"'{name}' must be a number")
    return int(value)
