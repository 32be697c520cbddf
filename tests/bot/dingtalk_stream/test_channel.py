"""DingTalkStreamInput over real HTTP on 127.0.0.1, in front of a stand-in agent.

The requests are what the bridge sends: a DingTalk robot message's JSON, signed with
the shared secret (:mod:`bot.dingtalk_stream.signing`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from rasa.shared.exceptions import InvalidConfigException

from bot.dingtalk.channel import ONLY_TEXT_REPLY
from bot.dingtalk_stream.channel import DingTalkStreamConfig, DingTalkStreamInput
from bot.dingtalk_stream.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers
from tests.bot.dingtalk_stream.conftest import (
    BRIDGE_SECRET,
    DingTalkStandIn,
    ServedChannel,
    robot_message,
)

StartChannel = Callable[..., Awaitable[ServedChannel]]


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()


async def post(url: str, body: bytes, headers: dict[str, str] | None = None,
               *, secret: str = BRIDGE_SECRET) -> tuple[int, Any]:
    """POSTs as the bridge does: signed now with ``secret`` unless ``headers`` are given."""
    sent = signed_headers(secret, body) if headers is None else headers
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}
                                | sent) as reply:
            return reply.status, await reply.json()


async def test_a_signed_message_reaches_rasa_with_the_webhook_connectors_ids(
        stream_channel: StartChannel) -> None:
    served = await stream_channel()
    message = robot_message(" where is my order 48213? ", senderStaffId="staff-42",
                            verified_identity={"channel": "dingtalk", "external_id": "boss"})

    status, answer = await post(served.url, encode(message))

    assert (status, answer) == (200, {"messages": [
        {"msgtype": "text", "text": {"content": "You said: where is my order 48213?"}}]})
    [received] = served.received
    assert (received.text, received.sender_id, received.input_channel, received.message_id) == (
        "where is my order 48213?", "dingtalk:staff-42", "dingtalk_stream", message["msgId"])
    # The channel's own identity; a field of that name in the body is not metadata.
    assert received.metadata["verified_identity"] == {"channel": "dingtalk",
                                                      "external_id": "staff-42"}
    assert received.metadata["msg_id"] == message["msgId"]
    assert "sessionWebhook" not in json.dumps(received.metadata)


async def test_group_chats_have_a_conversation_per_user(stream_channel: StartChannel) -> None:
    served = await stream_channel()

    await post(served.url, encode(robot_message("hi", conversationType="2",
                                                conversationId="cid-group",
                                                senderStaffId="staff-7")))

    assert [m.sender_id for m in served.received] == ["dingtalk:cid-group:staff-7"]


def _headers_for(body: bytes, **changes: Any) -> dict[str, str]:
    headers = signed_headers(BRIDGE_SECRET, body)
    return {name: value for name, value in (headers | changes).items() if value is not None}


def forged(body: bytes) -> dict[str, str]:
    return _headers_for(body, **{SIGNATURE_HEADER: secrets.token_hex(32)})


def wrong_secret(body: bytes) -> dict[str, str]:
    return signed_headers("another bridge's secret, also 32+ bytes", body)


def stale(body: bytes) -> dict[str, str]:
    return signed_headers(BRIDGE_SECRET, body, round(time.time() * 1000) - 301_000)


def future(body: bytes) -> dict[str, str]:
    return signed_headers(BRIDGE_SECRET, body, round(time.time() * 1000) + 301_000)


def other_body(body: bytes) -> dict[str, str]:
    return signed_headers(BRIDGE_SECRET, body.replace(b"48213", b"12345"))


def no_signature(body: bytes) -> dict[str, str]:
    return _headers_for(body, **{SIGNATURE_HEADER: None})


def no_timestamp(body: bytes) -> dict[str, str]:
    return _headers_for(body, **{TIMESTAMP_HEADER: None})


def no_headers(body: bytes) -> dict[str, str]:
    return {}


@pytest.mark.parametrize(("headers", "error"), [
    (forged, "wrong signature"), (wrong_secret, "wrong signature"),
    (other_body, "wrong signature"),
    (stale, "timestamp outside the accepted window"),
    (future, "timestamp outside the accepted window"),
    (no_signature, "missing signature headers"), (no_timestamp, "missing signature headers"),
    (no_headers, "missing signature headers"),
])
async def test_a_request_without_the_bridges_signature_is_refused(
        stream_channel: StartChannel, headers: Callable[[bytes], dict[str, str]],
        error: str) -> None:
    served = await stream_channel()
    body = encode(robot_message("where is my order 48213?"))

    status, answer = await post(served.url, body, headers(body))

    assert (status, answer) == (401, {"error": error})
    await asyncio.sleep(0.2)  # nothing is handled in the background either
    assert served.received == []


@pytest.mark.parametrize("body", [b"not json", b"", b"[]", b'{"msgtype": "text"}',
                                  "{\"text\": \"\xff\"".encode("latin-1")],
                         ids=["text", "empty", "list", "incomplete", "invalid-utf8"])
async def test_a_signed_body_that_is_no_dingtalk_message_is_refused(
        stream_channel: StartChannel, body: bytes) -> None:
    served = await stream_channel()

    status, answer = await post(served.url, body)

    assert status == 400 and answer["error"]
    assert served.received == []


async def test_an_unsigned_body_that_is_no_json_is_refused_before_parsing(
        stream_channel: StartChannel) -> None:
    served = await stream_channel()

    assert await post(served.url, b"not json", {}) == (401, {"error": "missing signature headers"})
    assert served.received == []


async def test_a_message_delivered_again_is_answered_once(stream_channel: StartChannel) -> None:
    served = await stream_channel()
    body = encode(robot_message("where is my order 48213?"))
    first = await post(served.url, body)

    again = await post(served.url, body)  # DingTalk's redelivery: same msgId, fresh signature

    assert first[0] == 200
    assert again == (409, {"error": "message already received"})
    assert len(served.received) == 1


async def test_non_text_messages_get_the_only_text_reply_without_reaching_rasa(
        stream_channel: StartChannel) -> None:
    served = await stream_channel()
    picture = robot_message("", msgtype="picture",
                            content={"downloadCode": "code-1", "pictureDownloadCode": "c"})
    del picture["text"]

    status, answer = await post(served.url, encode(picture))
    mention = await post(served.url, encode(robot_message("   ")))

    assert (status, answer) == (200, {"messages": [
        {"msgtype": "text", "text": {"content": ONLY_TEXT_REPLY}}]})
    assert mention == (200, {"messages": []})  # a bare @mention: nothing to answer
    assert served.received == []


async def test_replies_are_rendered_as_the_webhook_connector_renders_them(
        stream_channel: StartChannel) -> None:
    async def agent(message: UserMessage) -> None:
        out = message.output_channel
        await out.send_response(message.sender_id, {
            "text": "Which order?", "buttons": [{"title": "48213", "payload": "/x"},
                                                {"title": "12345", "payload": "/y"}]})
        await out.send_response(message.sender_id, {"image": "https://shop.example/a.png"})
        await out.send_response(message.sender_id, {"custom": {
            "msgtype": "markdown", "markdown": {"title": "t", "text": "**bold**"}}})

    served = await stream_channel(agent)

    status, answer = await post(served.url, encode(robot_message("my orders")))

    assert status == 200
    assert answer["messages"] == [
        {"msgtype": "text", "text": {"content": "Which order?\n• 48213\n• 12345"}},
        {"msgtype": "markdown",
         "markdown": {"title": "image", "text": "![image](https://shop.example/a.png)"}},
        {"msgtype": "markdown", "markdown": {"title": "t", "text": "**bold**"}}]


async def test_a_failing_assistant_is_a_500_the_bridge_turns_into_a_polite_line(
        stream_channel: StartChannel) -> None:
    async def broken(message: UserMessage) -> None:
        raise RuntimeError("the tracker store is down")

    served = await stream_channel(broken)

    assert await post(served.url, encode(robot_message("hi"))) == (
        500, {"error": "the assistant failed"})


async def test_an_agents_reply_is_pushed_to_the_conversations_session_webhook(
        stream_channel: StartChannel, dingtalk: DingTalkStandIn) -> None:
    served = await stream_channel(webhook_origins=(dingtalk.origin,))
    await post(served.url, encode(robot_message("hi", senderStaffId="staff-9",
                                                sessionWebhook=dingtalk.session_webhook)))

    await served.channel.get_output_channel().send_text_message("dingtalk:staff-9",
                                                                "Agent Wang here.")
    await served.channel.get_output_channel().send_text_message("dingtalk:staff-other",
                                                                "Nobody.")

    assert dingtalk.replies == [{"msgtype": "text", "text": {"content": "Agent Wang here."}}]


async def test_a_session_webhook_off_dingtalk_is_never_pushed_to(
        stream_channel: StartChannel, dingtalk: DingTalkStandIn) -> None:
    served = await stream_channel()  # DingTalk's origin only
    await post(served.url, encode(robot_message("hi", senderStaffId="staff-9",
                                                sessionWebhook=dingtalk.session_webhook)))

    await served.channel.get_output_channel().send_text_message("dingtalk:staff-9", "Hello")

    assert dingtalk.replies == []


# --- configuration ---------------------------------------------------------------------------

def test_the_credentials_block_makes_a_frozen_config() -> None:
    channel = DingTalkStreamInput.from_credentials({"bridge_secret": f"  {BRIDGE_SECRET} ",
                                                    "timestamp_window_s": "60"})

    assert channel.config == DingTalkStreamConfig(BRIDGE_SECRET, 60.0, 10.0)
    assert BRIDGE_SECRET not in repr(channel.config)
    with pytest.raises(AttributeError):
        channel.config.bridge_secret = "x" * 40  # type: ignore[misc]


@pytest.mark.parametrize(("credentials", "expected"), [
    (None, ["'bridge_secret'", "missing", "DINGTALK_STREAM_BRIDGE_SECRET"]),
    ({"bridge_secret": ""}, ["'bridge_secret'", "missing", "openssl rand -hex 32"]),
    ({"bridge_secret": "short-secret"}, ["'bridge_secret'", "12 bytes, fewer than 32"]),
    ({"bridge_secret": 12345}, ["'bridge_secret'", "not a string"]),
    ({"bridge_secret": BRIDGE_SECRET, "timestamp_window_s": 0},
     ["'timestamp_window_s'", "not 0", "positive number of seconds", "default (300)"]),
    ({"bridge_secret": BRIDGE_SECRET, "send_timeout_s": "soon"},
     ["'send_timeout_s'", "not 'soon'", "positive number"]),
    ({"bridge_secret": BRIDGE_SECRET, "timestamp_window_s": True},
     ["'timestamp_window_s'", "not True"]),
    ({"bridge_secret": BRIDGE_SECRET, "app_secret": "x"},
     ["does not know 'app_secret'", "bridge_secret, timestamp_window_s and send_timeout_s"]),
], ids=["no-block", "empty", "short", "number", "zero-window", "word", "bool", "unknown"])
def test_bad_config_names_the_key_the_value_and_the_fix(credentials: dict | None,
                                                       expected: list[str]) -> None:
    with pytest.raises(InvalidConfigException) as error:
        DingTalkStreamInput.from_credentials(credentials)

    message = str(error.value)
    assert all(part in message for part in expected), message
    assert "bot.dingtalk_stream.channel.DingTalkStreamInput" in message
    assert "short-secret" not in message  # a secret's value is never shown
