"""bot.dingtalk.channel: the Rasa input channel, from credentials and over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.utils.common import class_from_module_path
from rasa.shared.utils.io import read_config_file

from bot.dingtalk.channel import ONLY_TEXT_REPLY, DingTalkInput
from bot.dingtalk.output import DingTalkOutput
from tests.bot.dingtalk.conftest import (
    HOUR_MS,
    NOW_MS,
    PYKWALIFY_NOISE,
    SECRET,
    SESSION_TOKEN,
    WEBHOOK,
    FakeSendApi,
    Robot,
    body,
    headers,
)

# --- credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [None, {}, "app_secret", {"app_secret": None}, {"app_secret": ""}, {"app_secret": "  "},
     {"app_secret": 12345}, {"app_key": "dingappkey123"}],
)
def test_from_credentials_names_the_missing_secret(credentials: Any) -> None:
    with pytest.raises(InvalidConfigException, match="app_secret.*DINGTALK_APP_SECRET"):
        DingTalkInput.from_credentials(credentials)


@pytest.mark.parametrize(
    "changes",
    [{"timestamp_window_s": 0}, {"timestamp_window_s": "soon"}, {"send_timeout_s": -1},
     {"send_timeout_s": ".nan"}, {"send_timeout_s": True}, {"timestamp_window_s": "inf"}],
)
def test_from_credentials_refuses_bad_numbers(changes: dict[str, Any]) -> None:
    key = next(iter(changes))
    with pytest.raises(InvalidConfigException, match=key):
        DingTalkInput.from_credentials({"app_secret": SECRET} | changes)


def test_from_credentials_defaults() -> None:
    channel = DingTalkInput.from_credentials({"app_secret": SECRET})

    assert (channel.app_secret, channel.app_key) == (SECRET, None)
    assert (channel.timestamp_window_s, channel.send_timeout_s) == (3600, 10)
    assert channel.name() == "dingtalk"


@PYKWALIFY_NOISE
def test_rasa_builds_the_channel_from_a_credentials_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What `rasa run --credentials` does (rasa.core.run._create_single_channel).
    path = tmp_path / "credentials.im.yml"
    path.write_text("bot.dingtalk.DingTalkInput:\n"
                    "  app_secret: ${DINGTALK_APP_SECRET}\n"
                    "  app_key: dingappkey123\n"
                    "  timestamp_window_s: 600\n"
                    "  send_timeout_s: 5\n")
    monkeypatch.setenv("DINGTALK_APP_SECRET", SECRET)

    credentials = read_config_file(path)
    [(class_path, block)] = credentials.items()
    channel = class_from_module_path(class_path).from_credentials(block)

    assert isinstance(channel, DingTalkInput)
    assert (channel.app_secret, channel.app_key) == (SECRET, "dingappkey123")
    assert (channel.timestamp_window_s, channel.send_timeout_s) == (600, 5)


@PYKWALIFY_NOISE
def test_rasa_refuses_an_unset_secret_variable(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "credentials.im.yml"
    path.write_text("bot.dingtalk.DingTalkInput:\n  app_secret: ${DINGTALK_APP_SECRET}\n")
    monkeypatch.delenv("DINGTALK_APP_SECRET", raising=False)

    with pytest.raises(RasaException, match="DINGTALK_APP_SECRET"):
        read_config_file(path)


# --- over HTTP -------------------------------------------------------------------------------


async def test_health(robot: Callable[..., Awaitable[Robot]]) -> None:
    bot = await robot()

    async with bot.session.get(f"{bot.base_url}/") as reply:
        assert (reply.status, await reply.json()) == (200, {"status": "ok"})


async def test_a_signed_text_message_reaches_rasa_and_the_reply_the_send_api(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi) -> None:
    bot = await robot()

    status, answer = await bot.post(body(msgId="msg-1", sessionWebhook=send_api.url))

    assert (status, answer) == (200, {"msgtype": "empty"})
    [message] = bot.received
    assert (message.sender_id, message.text) == ("dingtalk:manager4711",
                                                 "where is my order 12345?")
    assert (message.input_channel, message.message_id) == ("dingtalk", "msg-1")
    assert message.metadata["sender_nick"] == "Li Lei"
    assert message.metadata["conversation_id"] == "cidAbC+dEf=="
    assert isinstance(message.output_channel, DingTalkOutput)
    assert send_api.received == [
        {"msgtype": "text", "text": {"content": "You said: where is my order 12345?"}}]
    assert send_api.content_types == ["application/json"]
    assert send_api.queries == [{"session": SESSION_TOKEN}]


async def test_a_group_message_gets_a_per_group_sender_id(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi) -> None:
    bot = await robot()

    await bot.post(body(conversationType="2", conversationTitle="Support",
                        sessionWebhook=send_api.url))

    assert [m.sender_id for m in bot.received] == ["dingtalk:cidAbC+dEf==:manager4711"]


def _stale() -> dict[str, str]:
    return headers(NOW_MS - HOUR_MS - 1)


@pytest.mark.parametrize(
    ("make_headers", "status"),
    [
        (lambda: headers(), 200),
        (lambda: headers(NOW_MS - HOUR_MS + 1000), 200),
        (lambda: headers(secret="another secret"), 401),
        (lambda: {"timestamp": str(NOW_MS), "sign": headers()["sign"][:-2] + "x="}, 401),
        (lambda: {"timestamp": str(NOW_MS + 1), "sign": headers()["sign"]}, 401),
        (lambda: {"sign": headers()["sign"]}, 401),
        (lambda: {"timestamp": str(NOW_MS)}, 401),
        (lambda: {}, 401),
        (_stale, 401),
        (lambda: headers(NOW_MS + HOUR_MS + 1), 401),
        (lambda: {"Timestamp": str(NOW_MS), "SIGN": headers()["sign"]}, 200),
    ],
    ids=["signed", "old-but-in-window", "wrong-secret", "tampered-sign", "tampered-timestamp",
         "no-timestamp", "no-sign", "no-headers", "stale", "future", "header-case"],
)
async def test_the_webhook_checks_the_signature(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi,
        make_headers: Callable[[], dict[str, str]], status: int) -> None:
    bot = await robot()

    got, answer = await bot.post(body(sessionWebhook=send_api.url), make_headers())

    assert got == status
    assert len(bot.received) == (1 if status == 200 else 0)
    if status == 401:
        assert set(answer) == {"error"}


async def test_a_replayed_message_is_refused(robot: Callable[..., Awaitable[Robot]],
                                             send_api: FakeSendApi) -> None:
    bot = await robot()
    data = body(msgId="msg-replayed", sessionWebhook=send_api.url)

    first, _ = await bot.post(data)
    again, answer = await bot.post(data)

    assert (first, again) == (200, 401)
    assert answer == {"error": "message already received"}
    assert len(bot.received) == 1


@pytest.mark.parametrize(
    "data",
    [b"{", b"", b"[]", b"\xff", b'{"msgtype": "text"}', body(conversationType="3"),
     body(text={"content": None})],
)
async def test_a_malformed_body_is_a_400(robot: Callable[..., Awaitable[Robot]],
                                         data: bytes) -> None:
    bot = await robot()

    status, answer = await bot.post(data)

    assert status == 400
    assert set(answer) == {"error"}
    assert bot.received == []


async def test_an_unsigned_malformed_body_is_a_401(
        robot: Callable[..., Awaitable[Robot]]) -> None:
    bot = await robot()

    assert (await bot.post(b"{", {}))[0] == 401


@pytest.mark.parametrize(
    "webhook",
    [WEBHOOK.replace("https://oapi.dingtalk.com", "https://attacker.example"),
     "http://169.254.169.254/latest/meta-data/"],
)
async def test_a_foreign_session_webhook_is_refused(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi, webhook: str) -> None:
    bot = await robot()

    status, _ = await bot.post(body(sessionWebhook=webhook))

    assert status == 400
    assert bot.received == [] and send_api.received == []


async def test_the_default_origin_is_dingtalk(robot: Callable[..., Awaitable[Robot]],
                                              send_api: FakeSendApi) -> None:
    bot = await robot(webhook_origins=DingTalkInput(SECRET).webhook_origins)

    assert (await bot.post(body(sessionWebhook=send_api.url)))[0] == 400


@pytest.mark.parametrize(("robot_code", "status"),
                         [("dingappkey123", 200), (None, 401), ("", 401), (123, 401),
                          ("otherapp", 401), ("DINGAPPKEY123", 401)],
                         ids=["same", "missing", "empty", "number", "other", "case"])
async def test_the_app_key_must_match_the_robot_code(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi,
        robot_code: Any, status: int) -> None:
    # The body is not signed: a message that leaves robotCode out must not skip the check.
    bot = await robot(app_key="dingappkey123")

    got, _ = await bot.post(body(robotCode=robot_code, sessionWebhook=send_api.url))

    assert got == status
    assert len(bot.received) == (1 if status == 200 else 0)
    if status == 401:
        assert send_api.received == []


@pytest.mark.parametrize("robot_code", [None, "dingappkey123", "otherapp"])
async def test_without_an_app_key_any_robot_code_is_accepted(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi,
        robot_code: str | None) -> None:
    bot = await robot()

    assert (await bot.post(body(robotCode=robot_code, sessionWebhook=send_api.url)))[0] == 200


@pytest.mark.parametrize(("changes", "external_id"),
                         [({}, "manager4711"), ({"senderStaffId": None}, "$:LWCP_v1:$abcdef"),
                          ({"conversationType": "2"}, "manager4711")])
async def test_the_signed_sender_is_the_verified_identity(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi,
        changes: dict[str, Any], external_id: str) -> None:
    bot = await robot()

    await bot.post(body(sessionWebhook=send_api.url, **changes))

    [message] = bot.received
    assert message.metadata["verified_identity"] == {"channel": "dingtalk",
                                                     "external_id": external_id}


async def test_a_body_cannot_name_its_own_verified_identity(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi) -> None:
    bot = await robot()

    await bot.post(body(sessionWebhook=send_api.url,
                        verified_identity={"channel": "webchat", "customer_id": "C-001"},
                        metadata={"verified_identity": {"customer_id": "C-001"}}))

    [message] = bot.received
    assert message.metadata["verified_identity"] == {"channel": "dingtalk",
                                                     "external_id": "manager4711"}


async def test_a_non_text_message_gets_the_only_text_reply(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi) -> None:
    bot = await robot()

    status, _ = await bot.post(body(msgtype="picture", text=None,
                                    content={"downloadCode": "abc"},
                                    sessionWebhook=send_api.url))

    assert status == 200
    assert bot.received == []
    assert send_api.received == [{"msgtype": "text", "text": {"content": ONLY_TEXT_REPLY}}]


async def test_a_bare_mention_is_ignored(robot: Callable[..., Awaitable[Robot]],
                                         send_api: FakeSendApi) -> None:
    bot = await robot()

    status, _ = await bot.post(body(text={"content": " "}, sessionWebhook=send_api.url))

    assert status == 200
    assert bot.received == [] and send_api.received == []


@pytest.mark.parametrize(
    ("status", "reply", "hang", "logged"),
    [
        (500, {"errcode": 500}, False, "HTTP 500"),
        (200, {"errcode": 300001, "errmsg": "session expired"}, False, "errcode=300001"),
        (200, {"errcode": 0}, True, "TimeoutError"),
    ],
    ids=["http-500", "errcode", "timeout"],
)
async def test_a_failing_send_api_is_logged_not_raised(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi,
        caplog: pytest.LogCaptureFixture, status: int, reply: dict[str, Any], hang: bool,
        logged: str) -> None:
    send_api.status, send_api.reply, send_api.hang = status, reply, hang
    bot = await robot(send_timeout_s=0.2)
    caplog.set_level(logging.WARNING, logger="bot.dingtalk")

    got, answer = await bot.post(body(sessionWebhook=send_api.url))

    assert (got, answer) == (200, {"msgtype": "empty"})
    assert len(bot.received) == 1 and len(send_api.received) == 1
    assert logged in caplog.text
    assert SECRET not in caplog.text and SESSION_TOKEN not in caplog.text


async def test_a_failing_agent_is_logged_not_raised(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi,
        caplog: pytest.LogCaptureFixture) -> None:
    async def broken(_: UserMessage) -> None:
        raise RuntimeError("the agent broke")

    bot = await robot(on_new_message=broken)

    status, _ = await bot.post(body(msgId="msg-broken", sessionWebhook=send_api.url))

    assert status == 200
    assert "handling message msg-broken failed" in caplog.text


async def test_the_answer_does_not_wait_for_rasa(robot: Callable[..., Awaitable[Robot]],
                                                 send_api: FakeSendApi) -> None:
    handled = asyncio.Event()
    release = asyncio.Event()

    async def slow(_: UserMessage) -> None:
        await release.wait()
        handled.set()

    bot = await robot(on_new_message=slow)
    async with bot.session.post(f"{bot.base_url}/webhook", headers=headers(),
                                data=body(sessionWebhook=send_api.url)) as reply:
        assert reply.status == 200
    assert not handled.is_set()

    release.set()
    await bot.channel.join()
    assert handled.is_set()
