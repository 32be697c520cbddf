"""Shared by the DingTalk tests: DingTalk's side of the channel, over real HTTP on 127.0.0.1.

DingTalk itself is played by the tests: they sign requests with its algorithm and
run a local aiohttp server as the ``sessionWebhook`` send API.
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
from tests.served import serve_sanic_on_loopback

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
