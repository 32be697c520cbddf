"""bot.dingtalk.output: the reply hosts allowed, and sending replies to a local send API."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from bot.dingtalk.output import DingTalkOutput, is_allowed_webhook
from tests.bot.dingtalk.conftest import NOW_MS, NOW_S, WEBHOOK, FakeSendApi


# --- reply hosts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (WEBHOOK, True),
        ("https://OAPI.dingtalk.com:443/robot/sendBySession?session=x", True),
        ("http://oapi.dingtalk.com/robot/sendBySession", False),
        ("https://oapi.dingtalk.com:8443/robot/sendBySession", False),
        ("https://oapi.dingtalk.com.example.org/robot", False),
        ("https://oapi.dingtalk.com@example.org/robot", False),
        ("https://user@oapi.dingtalk.com/robot", False),
        ("https://example.org/?u=https://oapi.dingtalk.com/", False),
        ("https://oapi.dingtalk.com:port/robot", False),
        ("//oapi.dingtalk.com/robot", False),
        ("file:///etc/passwd", False),
    ],
)
def test_is_allowed_webhook(url: str, allowed: bool) -> None:
    assert is_allowed_webhook(url) is allowed



# --- the output channel ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "sent"),
    [
        ({"text": "Hi!\n\nHow can I help?"},
         [{"msgtype": "text", "text": {"content": "Hi!\n\nHow can I help?"}}]),
        ({"text": "Cancel order 48213?",
          "buttons": [{"title": "Yes", "payload": "/affirm"},
                      {"title": "No", "payload": "/deny"}]},
         [{"msgtype": "text", "text": {"content": "Cancel order 48213?\n• Yes\n• No"}}]),
        ({"text": "Your parcel:", "image": "https://example.org/p.png"},
         [{"msgtype": "text", "text": {"content": "Your parcel:"}},
          {"msgtype": "markdown",
           "markdown": {"title": "image", "text": "![image](https://example.org/p.png)"}}]),
        ({"custom": {"msgtype": "actionCard",
                     "actionCard": {"title": "Order", "text": "Order 12345"}}},
         [{"msgtype": "actionCard", "actionCard": {"title": "Order", "text": "Order 12345"}}]),
        ({"custom": {"order": "12345"}},
         [{"msgtype": "text", "text": {"content": '{"order": "12345"}'}}]),
    ],
    ids=["text", "buttons", "image", "native-custom", "other-custom"],
)
async def test_the_output_channel_renders_rasa_responses(
        send_api: FakeSendApi, response: dict[str, Any], sent: list[dict[str, Any]]) -> None:
    output = DingTalkOutput(send_api.url, timeout_s=2.0)

    await output.send_response("manager4711", response)

    assert send_api.received == sent


async def test_an_expired_session_is_not_used(send_api: FakeSendApi,
                                              caplog: pytest.LogCaptureFixture) -> None:
    output = DingTalkOutput(send_api.url, expires_at_ms=NOW_MS - 1, clock=lambda: NOW_S)

    assert not await output.send_payload({"msgtype": "text", "text": {"content": "late"}})
    assert send_api.received == []
    assert "expired" in caplog.text


async def test_an_unreachable_send_api_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a free port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    output = DingTalkOutput(f"http://127.0.0.1:{port}/robot/sendBySession?session=x",
                            timeout_s=2.0)

    assert not await output.send_payload({"msgtype": "text", "text": {"content": "hi"}})
    assert "ClientConnectorError" in caplog.text
