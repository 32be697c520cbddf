"""bot.dingtalk.message: parsing what DingTalk POSTs to the outgoing robot, and the robot
API's side of outgoing messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.dingtalk.message import (
    DingTalkPayloadError,
    markdown_message,
    parse_payload,
    robot_template,
    single_chat_user,
    text_message,
)
from tests.bot.dingtalk.conftest import HOUR_MS, NOW_MS, SESSION_TOKEN, WEBHOOK, body

# --- payload ---------------------------------------------------------------------------------


def test_parse_payload_reads_a_text_message() -> None:
    message = parse_payload(body(msgId="msg1"))

    assert (message.msg_id, message.msgtype, message.text) == ("msg1", "text",
                                                              "where is my order 12345?")
    assert message.rasa_sender_id == "dingtalk:manager4711"
    assert message.external_id == "manager4711"
    assert message.session_webhook == WEBHOOK
    assert message.session_webhook_expires_ms == NOW_MS + HOUR_MS
    assert "sessionWebhook" not in json.dumps(message.metadata())
    assert SESSION_TOKEN not in json.dumps(message.metadata())


@pytest.mark.parametrize(
    ("changes", "sender_id"),
    [
        ({}, "dingtalk:manager4711"),
        ({"senderStaffId": None}, "dingtalk:$:LWCP_v1:$abcdef"),
        ({"senderStaffId": ""}, "dingtalk:$:LWCP_v1:$abcdef"),
        ({"conversationType": "2"}, "dingtalk:cidAbC+dEf==:manager4711"),
        ({"conversationType": 2, "senderStaffId": None},
         "dingtalk:cidAbC+dEf==:$:LWCP_v1:$abcdef"),
    ],
)
def test_rasa_sender_id(changes: dict[str, Any], sender_id: str) -> None:
    # Namespaced: a REST caller's sender ("rest:...") never names a DingTalk conversation.
    assert parse_payload(body(**changes)).rasa_sender_id == sender_id


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"text": {"content": "\u2005 hello \n"}}, "hello"),
        ({"text": {"content": "  "}}, ""),
        ({"msgtype": "picture", "text": None, "content": {"downloadCode": "x"}}, None),
        ({"msgtype": "richText", "text": None}, None),
    ],
)
def test_parse_payload_text(changes: dict[str, Any], text: str | None) -> None:
    assert parse_payload(body(**changes)).text == text


@pytest.mark.parametrize(
    ("changes", "is_admin", "create_at_ms"),
    [
        ({}, False, NOW_MS - 500),
        ({"isAdmin": True}, True, NOW_MS - 500),
        # Fields that are only passed on are read leniently.
        ({"isAdmin": "yes", "createAt": "soon"}, False, None),
        ({"createAt": True}, False, None),
    ],
)
def test_parse_payload_optional_fields(changes: dict[str, Any], is_admin: bool,
                                       create_at_ms: int | None) -> None:
    message = parse_payload(body(**changes))

    assert (message.is_admin, message.create_at_ms) == (is_admin, create_at_ms)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"\xff\xfe{}",
        b"null",
        b"[]",
        b'"text"',
        b"[" * 100_000,
        body(msgId=None),
        body(msgId=42),
        body(msgtype=None),
        body(conversationId=""),
        body(senderId=None),
        body(sessionWebhook=None),
        body(conversationType="3"),
        body(conversationType=True),
        body(conversationType=None),
        body(text=None),
        body(text="hello"),
        body(text={"content": 42}),
    ],
)
def test_parse_payload_refuses_other_shapes(raw: bytes) -> None:
    with pytest.raises(DingTalkPayloadError):
        parse_payload(raw)


# --- the robot API's side --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "template"),
    [
        (text_message("你好\n"), ("sampleText", {"content": "你好\n"})),
        (markdown_message("image", "![image](https://example.org/p.png)"),
         ("sampleMarkdown", {"title": "image", "text": "![image](https://example.org/p.png)"})),
        ({"msgtype": "actionCard", "actionCard": {"title": "Order", "text": "12345"}}, None),
        ({"msgtype": "text", "text": "not an object"}, None),
        ({"msgtype": "markdown", "markdown": {"text": "no title"}}, None),
        ({}, None),
    ],
)
def test_robot_template(payload: dict[str, Any], template: Any) -> None:
    assert robot_template(payload) == template


@pytest.mark.parametrize(
    ("sender", "user"),
    [
        ("dingtalk:manager4711", "manager4711"),
        (parse_payload(body()).rasa_sender_id, "manager4711"),
        (parse_payload(body(senderStaffId=None)).rasa_sender_id, None),  # outsider
        (parse_payload(body(conversationType="2")).rasa_sender_id, None),  # group
        ("dingtalk:", None),
        ("rest:manager4711", None),
        ("webchat:dingtalk:manager4711", None),
        ("manager4711", None),
    ],
)
def test_single_chat_user(sender: str, user: str | None) -> None:
    assert single_chat_user(sender) == user
