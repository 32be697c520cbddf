"""The DingTalk outgoing-robot channel, over real HTTP on 127.0.0.1.

DingTalk itself is played by the tests: they sign requests with its algorithm and
run a local aiohttp server as the ``sessionWebhook`` send API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import test_utils, web
from rasa.core.channels.channel import UserMessage
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.utils.common import class_from_module_path
from rasa.shared.utils.io import read_config_file
from sanic import Sanic

from bot.dingtalk import (
    ONLY_TEXT_REPLY,
    DingTalkInput,
    DingTalkOutput,
    DingTalkPayloadError,
    DingTalkSignatureError,
    RecentMessageIds,
    is_allowed_webhook,
    parse_payload,
    sign,
    verify,
)

SECRET = "not-a-real-dingtalk-app-secret"
NOW_S = 1_690_000_000.0
NOW_MS = int(NOW_S * 1000)
HOUR_MS = 3_600_000
SESSION_TOKEN = "session-token-123"
WEBHOOK = "https://oapi.dingtalk.com/robot/sendBySession?session=" + SESSION_TOKEN

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]

# Sanic rewrites its protocol class when an app starts; only in test mode can a
# second app start in the same process. sanic-testing sets this flag the same way.
Sanic.test_mode = True


def headers(timestamp: int | str = NOW_MS, secret: str = SECRET) -> dict[str, str]:
    """The headers DingTalk sends: ``timestamp`` and its ``sign``."""
    return {"timestamp": str(timestamp), "sign": sign(timestamp, secret)}


def payload(**changes: Any) -> dict[str, Any]:
    """A single-chat text message as DingTalk POSTs it; ``None`` removes a field."""
    message = {
        "msgtype": "text",
        "text": {"content": " where is my order 12345? "},
        "msgId": "msg" + uuid.uuid4().hex,
        "createAt": NOW_MS - 500,
        "conversationType": "1",
        "conversationId": "cidAbC+dEf==",
        "conversationTitle": "",
        "senderId": "$:LWCP_v1:$abcdef",
        "senderNick": "Li Lei",
        "senderStaffId": "manager4711",
        "chatbotUserId": "$:LWCP_v1:$robot",
        "sessionWebhook": WEBHOOK,
        "sessionWebhookExpiredTime": NOW_MS + HOUR_MS,
        "isAdmin": False,
        "robotCode": "dingappkey123",
    }
    message.update(changes)
    return {key: value for key, value in message.items() if value is not None}


def body(**changes: Any) -> bytes:
    return json.dumps(payload(**changes)).encode()


# --- signature ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "secret", "expected"),
    [
        # Hand-computed with: printf '%s\n%s' "$ts" "$secret" \
        #   | openssl dgst -sha256 -hmac "$secret" -binary | base64
        (1577262236757, "this is secret", "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="),
        ("1690000000000", SECRET, "yhN3nUdQoKT0HAC2+Ya4o/x8X/fRjfnpzkvSwp1hg7E="),
    ],
)
def test_sign_matches_known_vectors(timestamp: int | str, secret: str, expected: str) -> None:
    assert sign(timestamp, secret) == expected


@pytest.mark.parametrize(
    ("timestamp", "signature", "problem"),
    [
        (None, sign(NOW_MS, SECRET), "missing"),
        (str(NOW_MS), None, "missing"),
        (str(NOW_MS), "", "missing"),
        (str(NOW_MS), sign(NOW_MS, "another secret"), "wrong 'sign'"),
        (str(NOW_MS), "A" + sign(NOW_MS, SECRET)[1:], "wrong 'sign'"),
        (str(NOW_MS), sign(NOW_MS + 1, SECRET), "wrong 'sign'"),
        (str(NOW_MS), "签名", "wrong 'sign'"),
        (str(NOW_MS - HOUR_MS - 1), sign(NOW_MS - HOUR_MS - 1, SECRET), "outside"),
        (str(NOW_MS + HOUR_MS + 1), sign(NOW_MS + HOUR_MS + 1, SECRET), "outside"),
        ("169000000000a", sign("169000000000a", SECRET), "malformed"),
        ("-1", sign("-1", SECRET), "malformed"),
        ("²", sign("²", SECRET), "malformed"),
        ("9" * 40, sign("9" * 40, SECRET), "malformed"),
    ],
)
def test_verify_refuses(timestamp: str | None, signature: str | None, problem: str) -> None:
    with pytest.raises(DingTalkSignatureError, match=problem):
        verify(timestamp, signature, SECRET, now_ms=NOW_MS)


@pytest.mark.parametrize("timestamp", [NOW_MS, NOW_MS - HOUR_MS, NOW_MS + HOUR_MS])
def test_verify_accepts_the_window_edges(timestamp: int) -> None:
    verify(str(timestamp), sign(timestamp, SECRET), SECRET, now_ms=NOW_MS)


def test_verify_uses_the_given_window() -> None:
    stale = NOW_MS - 61_000
    with pytest.raises(DingTalkSignatureError, match="outside"):
        verify(str(stale), sign(stale, SECRET), SECRET, now_ms=NOW_MS, window_s=60)


# --- payload ---------------------------------------------------------------------------------


def test_parse_payload_reads_a_text_message() -> None:
    message = parse_payload(body(msgId="msg1"))

    assert (message.msg_id, message.msgtype, message.text) == ("msg1", "text",
                                                              "where is my order 12345?")
    assert message.rasa_sender_id == "manager4711"
    assert message.session_webhook == WEBHOOK
    assert message.session_webhook_expires_ms == NOW_MS + HOUR_MS
    assert "sessionWebhook" not in json.dumps(message.metadata())
    assert SESSION_TOKEN not in json.dumps(message.metadata())


@pytest.mark.parametrize(
    ("changes", "sender_id"),
    [
        ({}, "manager4711"),
        ({"senderStaffId": None}, "$:LWCP_v1:$abcdef"),
        ({"senderStaffId": ""}, "$:LWCP_v1:$abcdef"),
        ({"conversationType": "2"}, "cidAbC+dEf==:manager4711"),
        ({"conversationType": 2, "senderStaffId": None}, "cidAbC+dEf==:$:LWCP_v1:$abcdef"),
    ],
)
def test_rasa_sender_id(changes: dict[str, Any], sender_id: str) -> None:
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


def test_recent_message_ids_forget_after_the_window_and_stay_bounded() -> None:
    ids = RecentMessageIds(ttl_s=10, max_size=3)

    assert not ids.seen("a", now=0)
    assert ids.seen("a", now=9)
    assert not ids.seen("a", now=10)
    for i, msg_id in enumerate("bcdef"):
        assert not ids.seen(msg_id, now=11 + i)
    assert len(ids) == 3
    assert not ids.seen("b", now=20)  # pushed out by newer ids


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


# pykwalify, which validates credentials files, loads its extensions the deprecated way.
PYKWALIFY_NOISE = pytest.mark.filterwarnings(
    "ignore:the load_module\\(\\) method is deprecated:DeprecationWarning")


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


class FakeSendApi:
    """DingTalk's sessionWebhook on 127.0.0.1: records what it is sent.

    Attributes:
        received: The JSON bodies, in order.
        status: The HTTP status it answers.
        reply: The JSON it answers.
        hang: Whether it waits for ``release`` before answering (a timeout).
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.queries: list[dict[str, str]] = []
        self.status = 200
        self.reply: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        self.hang = False
        self.release = asyncio.Event()
        self.origin = ""
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        self.content_types.append(request.content_type)
        self.queries.append(dict(request.query))
        if self.hang:
            await self.release.wait()
        return web.json_response(self.reply, status=self.status)


@pytest.fixture
async def send_api() -> AsyncIterator[FakeSendApi]:
    api = FakeSendApi()
    app = web.Application()
    app.router.add_post("/robot/sendBySession", api.handle)
    server = test_utils.TestServer(app, host="127.0.0.1")
    await server.start_server()
    api.origin = f"http://127.0.0.1:{server.port}"
    api.url = f"{api.origin}/robot/sendBySession?session={SESSION_TOKEN}"
    yield api
    api.release.set()
    await server.close()


@asynccontextmanager
async def serve(channel: DingTalkInput, on_new_message: OnNewMessage) -> AsyncIterator[str]:
    """Runs the channel's blueprint as Rasa mounts it; yields the webhook URL."""
    app = Sanic(f"dingtalk-test-{uuid.uuid4().hex}", configure_logging=False)
    app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/dingtalk")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        server = await app.create_server(sock=sock, return_asyncio_server=True,
                                         access_log=False)
        try:
            await server.startup()
            await server.before_start()
            await server.after_start()
            yield f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/dingtalk"
        finally:
            await server.before_stop()
            await server.close()
            await server.after_stop()


class Robot:
    """DingTalk's side of the webhook: POSTs messages, signed or not."""

    def __init__(self, channel: DingTalkInput, base_url: str,
                 session: aiohttp.ClientSession, received: list[UserMessage]) -> None:
        self.channel = channel
        self.base_url = base_url
        self.session = session
        self.received = received

    async def post(self, data: bytes,
                   request_headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """POSTs to the webhook; waits for the background handling too."""
        sent_headers = headers() if request_headers is None else request_headers
        async with self.session.post(f"{self.base_url}/webhook", data=data,
                                     headers=sent_headers) as reply:
            result = reply.status, await reply.json()
        await self.channel.join()
        return result


async def recording(message: UserMessage) -> None:
    """Stands in for Rasa's agent: replies through the message's output channel."""
    await message.output_channel.send_response(
        message.sender_id, {"text": f"You said: {message.text}"})


@pytest.fixture
async def robot(send_api: FakeSendApi) -> AsyncIterator[Callable[..., Awaitable[Robot]]]:
    """Factory: a DingTalkInput served on 127.0.0.1, replying to ``send_api``."""
    async with aiohttp.ClientSession() as session:
        servers: list[Any] = []

        async def start(on_new_message: OnNewMessage = recording, **options: Any) -> Robot:
            options = {"send_timeout_s": 2.0, "clock": lambda: NOW_S,
                       "webhook_origins": (send_api.origin,)} | options
            channel = DingTalkInput(SECRET, **options)
            received: list[UserMessage] = []

            async def on_new(message: UserMessage) -> None:
                received.append(message)
                await on_new_message(message)

            server = serve(channel, on_new)
            servers.append(server)
            return Robot(channel, await server.__aenter__(), session, received)

        yield start
        for server in reversed(servers):
            await server.__aexit__(None, None, None)


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
    assert (message.sender_id, message.text) == ("manager4711", "where is my order 12345?")
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

    assert [m.sender_id for m in bot.received] == ["cidAbC+dEf==:manager4711"]


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
                         [("dingappkey123", 200), (None, 200), ("otherapp", 401)])
async def test_the_app_key_must_match_the_robot_code(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi,
        robot_code: str | None, status: int) -> None:
    bot = await robot(app_key="dingappkey123")

    got, _ = await bot.post(body(robotCode=robot_code, sessionWebhook=send_api.url))

    assert got == status


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
