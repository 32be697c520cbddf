"""The DingTalk outgoing-robot message format: what DingTalk POSTs and what we send back.

Incoming: :func:`parse_payload` turns the JSON body of a webhook request into a
:class:`DingTalkMessage`, or refuses it with :class:`DingTalkPayloadError`.

Outgoing: :data:`EMPTY_REPLY` answers the webhook request itself;
:func:`text_message` and :func:`markdown_message` build the bodies that are POSTed to
a conversation's ``sessionWebhook``; :func:`robot_template` turns them into the robot
API's templates, and :func:`single_chat_user` finds the user that API sends to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.trust import sender_id

# The webhook's own answer: the replies go to the sessionWebhook instead.
EMPTY_REPLY = {"msgtype": "empty"}


class DingTalkPayloadError(ValueError):
    """The request body is not a DingTalk outgoing-robot message."""


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
    def external_id(self) -> str:
        """The sender's id: ``senderStaffId``, else ``senderId`` (users outside the
        organisation have no staff id)."""
        return self.sender_staff_id or self.sender_id

    @property
    def rasa_sender_id(self) -> str:
        """The Rasa conversation id: ``dingtalk:<user>``, scoped by the group in
        group chats (``dingtalk:<conversationId>:<user>``)."""
        user = self.external_id
        return sender_id("dingtalk", f"{self.conversation_id}:{user}" if self.is_group else user)

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


def text_message(content: str) -> dict[str, Any]:
    """A DingTalk text message.

    Args:
        content: The text.

    Returns:
        ``{"msgtype": "text", "text": {"content": content}}``.
    """
    return {"msgtype": "text", "text": {"content": content}}


def markdown_message(title: str, text: str) -> dict[str, Any]:
    """A DingTalk markdown message.

    Args:
        title: The title DingTalk shows in the conversation list and notifications.
        text: The markdown.

    Returns:
        ``{"msgtype": "markdown", "markdown": {"title": title, "text": text}}``.
    """
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


def robot_template(payload: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The robot API's template for a ``sessionWebhook`` message.

    The robot API (``oToMessages/batchSend``) takes a ``msgKey`` and its
    ``msgParam`` instead of the webhook's ``{"msgtype": ...}`` messages.

    Args:
        payload: A message as :func:`text_message` or :func:`markdown_message` build it.

    Returns:
        ``("sampleText", {"content"})`` or ``("sampleMarkdown", {"title", "text"})``;
        ``None`` for other message types (e.g. an ``actionCard``), whose fields the
        templates do not match one to one.
    """
    msgtype = payload.get("msgtype")
    if msgtype == "text":
        content = payload.get("text")
        if isinstance(content, dict) and isinstance(content.get("content"), str):
            return "sampleText", {"content": content["content"]}
    elif msgtype == "markdown":
        markdown = payload.get("markdown")
        if (isinstance(markdown, dict) and isinstance(markdown.get("title"), str)
                and isinstance(markdown.get("text"), str)):
            return "sampleMarkdown", {"title": markdown["title"], "text": markdown["text"]}
    return None


def single_chat_user(rasa_sender_id: str) -> str | None:
    """The user of a single-chat conversation, from its Rasa sender id.

    Args:
        rasa_sender_id: A sender id as :attr:`DingTalkMessage.rasa_sender_id` builds it.

    Returns:
        The staff id of ``"dingtalk:<staff id>"``; ``None`` for a group conversation
        (``"dingtalk:<conversationId>:<user>"``), for a user without staff id (their
        ``senderId`` reads ``"$:LWCP_v1:$..."``), and for other channels' ids: a
        colon after the prefix means one of the first two, and the robot API's
        one-to-one messages need a staff id.
    """
    prefix = sender_id("dingtalk", "")
    if not rasa_sender_id.startswith(prefix):
        return None
    user = rasa_sender_id[len(prefix):]
    return user if user and ":" not in user else None
