"""Shared by the DingTalk tests: DingTalk's side of the channel, over real HTTP on 127.0.0.1.

DingTalk itself is played by the tests: they sign requests with its algorithm and
run local aiohttp servers as the ``sessionWebhook`` send API and as the robot API.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import test_utils, web
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.dingtalk.auth import sign
from bot.dingtalk.channel import DingTalkInput
from tests.served import serve_on_loopback, serve_sanic_on_loopback

SECRET = "not-a-real-dingtalk-app-secret"
NOW_S = 1_690_000_000.0
NOW_MS = int(NOW_S * 1000)
HOUR_MS = 3_600_000
SESSION_TOKEN = "session-token-123"
WEBHOOK = "https://oapi.dingtalk.com/robot/sendBySession?session=" + SESSION_TOKEN

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]

# pykwalify, which validates credentials files, loads its extensions the deprecated way.
PYKWALIFY_NOISE = pytest.mark.filterwarnings(
    "ignore:the load_module\\(\\) method is deprecated:DeprecationWarning")

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
    async with serve_sanic_on_loopback(app) as port:
        yield f"http://127.0.0.1:{port}/webhooks/dingtalk"


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


# --- the robot API (pushed messages) ---------------------------------------------------------

APP_KEY = "dingappkey123"
ACCESS_TOKEN = "not-a-real-access-token-42"
USER = "manager4711"
AGENT_TEXT = "Agent Wang here: your refund for order 12345 is on its way."


class Clock:
    """A settable clock in seconds since the epoch, for the channel's ``clock``."""

    def __init__(self, now: float = NOW_S) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class FakeRobotApi:
    """DingTalk's server API (access token, one-to-one robot messages) on 127.0.0.1.

    Attributes:
        token_requests: The JSON bodies of the access token requests, in order.
        sends: ``(access token header, JSON body)`` of each batchSend request.
        token_status / token_reply: The token endpoint's answer.
        send_status / send_reply: The batchSend endpoint's answer; a callable reply
            is called with the request's token header.
        hang: Whether batchSend waits for ``release`` before answering (a timeout).
        origin: ``http://127.0.0.1:<port>``, the ``api_base``.
    """

    def __init__(self) -> None:
        self.token_requests: list[dict[str, Any]] = []
        self.sends: list[tuple[str | None, dict[str, Any]]] = []
        self.tokens_issued = 0
        self.token_status = 200
        self.token_reply: dict[str, Any] | None = None
        self.expire_in = 7200
        self.send_status = 200
        self.send_reply: dict[str, Any] = {"processQueryKey": "pqk-1",
                                           "invalidStaffIdList": [],
                                           "flowControlledStaffIdList": []}
        self.refuse_tokens: set[str] = set()
        self.hang = False
        self.release = asyncio.Event()
        self.origin = ""

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests.append(await request.json())
        if self.token_reply is not None:
            return web.json_response(self.token_reply, status=self.token_status)
        self.tokens_issued += 1
        return web.json_response({"accessToken": f"{ACCESS_TOKEN}-{self.tokens_issued}",
                                  "expireIn": self.expire_in}, status=self.token_status)

    async def batch_send(self, request: web.Request) -> web.Response:
        token = request.headers.get("x-acs-dingtalk-access-token")
        self.sends.append((token, await request.json()))
        if self.hang:
            await self.release.wait()
        if token in self.refuse_tokens:
            return web.json_response({"code": "InvalidAuthentication",
                                      "message": "不合法的access_token", "requestid": "r-401"},
                                     status=401)
        return web.json_response(self.send_reply, status=self.send_status)


@pytest.fixture
async def robot_api_stub() -> AsyncIterator[FakeRobotApi]:
    api = FakeRobotApi()
    app = web.Application()
    app.router.add_post("/v1.0/oauth2/accessToken", api.token)
    app.router.add_post("/v1.0/robot/oToMessages/batchSend", api.batch_send)
    runner, port = await serve_on_loopback(app)
    api.origin = f"http://127.0.0.1:{port}"
    yield api
    api.release.set()
    await runner.cleanup()


def assert_no_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """No log line of ours names a secret, a token or the agent's text.

    The stubs' access log (``aiohttp.access``) is DingTalk's side and left out.
    """
    ours = "\n".join(record.getMessage() for record in caplog.records
                     if record.name != "aiohttp.access")
    for secret in (SECRET, ACCESS_TOKEN, SESSION_TOKEN, AGENT_TEXT):
        assert secret not in ours
