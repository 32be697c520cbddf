"""Shared by the DingTalk Stream tests: DingTalk played on 127.0.0.1, and the bridge.

:class:`DingTalkStandIn` is DingTalk's side of Stream mode as the SDK
(``dingtalk_stream`` 0.24.3, ``stream.py`` and ``frames.py``) speaks it: ``POST
/v1.0/gateway/connections/open`` answers ``{endpoint, ticket}``; the WebSocket at that
endpoint (``?ticket=``) sends JSON frames ``{specVersion, type, headers, data}`` whose
``data`` is a JSON string, and reads the client's ACKs ``{code, headers: {messageId,
contentType}, message, data}``; robot messages are ``CALLBACK`` frames of topic
``/v1.0/im/bot/messages/get``. It is also the messages' ``sessionWebhook`` and records
the replies. The bridge runs as a real process with ``.venv-stream/bin/python``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.dingtalk_stream.channel import DingTalkStreamConfig, DingTalkStreamInput
from tests.bot.dingtalk.conftest import payload
from tests.served import ROOT, serve_on_loopback, serve_sanic_on_loopback

BRIDGE_SECRET = "test-only dingtalk stream bridge secret, 32+ bytes"
APP_KEY = "dingstreamappkey"
APP_SECRET = "not-a-real-dingtalk-app-secret-for-stream"
STREAM_PYTHON = ROOT / ".venv-stream" / "bin" / "python"
BOT_TOPIC = "/v1.0/im/bot/messages/get"
SESSION_TOKEN = "stream-session-token"

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]

# Sanic rewrites its protocol class when an app starts; only in test mode can a
# second app start in the same process (as tests/bot/dingtalk/conftest.py does).
Sanic.test_mode = True


def stream_python() -> Path:
    """The bridge's interpreter; a failure that says how to build it when missing."""
    if not STREAM_PYTHON.is_file():
        pytest.fail(f"{STREAM_PYTHON} is missing: run `make dingtalk-stream` (make test "
                    f"builds it) to create the DingTalk Stream bridge's environment")
    return STREAM_PYTHON


def robot_message(text: str, **changes: Any) -> dict[str, Any]:
    """A single-chat text message as DingTalk's Stream mode delivers it (the webhook's
    fields, tests/bot/dingtalk/conftest.py); ``None`` removes a field."""
    now = round(time.time() * 1000)
    return payload(**{"text": {"content": text}, "createAt": now - 200,
                      "sessionWebhookExpiredTime": now + 3_600_000} | changes)


class DingTalkStandIn:
    """DingTalk's Stream gateway and ``sessionWebhook`` on 127.0.0.1.

    Attributes:
        open_requests: The JSON bodies of the open-connection requests.
        frames: What the client sent over the WebSocket (ACKs), decoded.
        replies: The JSON bodies POSTed to the session webhook.
        origin: ``http://127.0.0.1:<port>``, the ``DINGTALK_STREAM_API_BASE``.
        connections: How many WebSockets opened.
    """

    def __init__(self) -> None:
        self.open_requests: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self.ticket = f"ticket-{uuid.uuid4().hex}"
        self.origin = ""
        self.connections = 0
        self._socket: web.WebSocketResponse | None = None
        self._changed = asyncio.Condition()

    @property
    def session_webhook(self) -> str:
        """A ``sessionWebhook`` URL on this stand-in."""
        return f"{self.origin}/robot/sendBySession?session={SESSION_TOKEN}"

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout_s: float,
                       what: str) -> Any:
        """Waits until ``predicate()`` is truthy; returns its value."""
        async def until() -> Any:
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value
        try:
            return await asyncio.wait_for(until(), timeout_s)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {what} within {timeout_s} s") from None

    async def open_connection(self, request: web.Request) -> web.Response:
        self.open_requests.append(await request.json())
        endpoint = self.origin.replace("http://", "ws://") + "/gateway/connect"
        return web.json_response({"endpoint": endpoint, "ticket": self.ticket})

    async def connect(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") != self.ticket:
            return web.json_response({"code": "invalid ticket"}, status=403)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        self.connections += 1
        await self._notify()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                self.frames.append(json.loads(message.data))
                await self._notify()
        return socket

    async def send_by_session(self, request: web.Request) -> web.Response:
        if request.query.get("session") != SESSION_TOKEN:
            return web.json_response({"errcode": 300001, "errmsg": "bad session"}, status=400)
        self.replies.append(await request.json())
        await self._notify()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def connected(self, timeout_s: float = 60) -> None:
        """Waits for the bridge's WebSocket."""
        await self.wait_for(lambda: self._socket is not None and not self._socket.closed,
                            timeout_s, "Stream connection from the bridge")

    async def send_frame(self, kind: str, topic: str, data: dict[str, Any]) -> str:
        """Sends a frame as DingTalk does; returns its ``messageId``."""
        assert self._socket is not None, "no bridge connected"
        message_id = f"frame-{uuid.uuid4().hex}"
        await self._socket.send_str(json.dumps({
            "specVersion": "1.0", "type": kind,
            "headers": {"appId": "app-1", "connectionId": "conn-1",
                        "contentType": "application/json", "messageId": message_id,
                        "time": str(round(time.time() * 1000)), "topic": topic},
            "data": json.dumps(data, ensure_ascii=False)}, ensure_ascii=False))
        return message_id

    async def deliver(self, message: dict[str, Any]) -> str:
        """Sends a robot message (a ``CALLBACK`` frame); returns the frame's id."""
        return await self.send_frame("CALLBACK", BOT_TOPIC, message)

    async def ack(self, message_id: str, timeout_s: float = 120) -> dict[str, Any]:
        """The client's ACK of frame ``message_id``."""
        def found() -> dict[str, Any] | None:
            return next((frame for frame in self.frames
                         if frame.get("headers", {}).get("messageId") == message_id), None)
        return await self.wait_for(found, timeout_s, f"ACK of {message_id}")

    async def reply_count(self, count: int, timeout_s: float = 120) -> list[dict[str, Any]]:
        """Waits until ``count`` replies arrived; returns all of them."""
        await self.wait_for(lambda: len(self.replies) >= count, timeout_s,
                            f"{count} replies at the session webhook")
        return list(self.replies)


@pytest.fixture
async def dingtalk() -> AsyncIterator[DingTalkStandIn]:
    """DingTalk's Stream gateway and session webhook, served on 127.0.0.1."""
    stand_in = DingTalkStandIn()
    app = web.Application()
    app.router.add_post("/v1.0/gateway/connections/open", stand_in.open_connection)
    app.router.add_get("/gateway/connect", stand_in.connect)
    app.router.add_post("/robot/sendBySession", stand_in.send_by_session)
    runner, port = await serve_on_loopback(app)
    stand_in.origin = f"http://127.0.0.1:{port}"
    yield stand_in
    if stand_in._socket is not None:  # noqa: SLF001 - the fixture owns it
        await stand_in._socket.close()  # noqa: SLF001
    await runner.cleanup()


class Bridge:
    """A running bridge process and its log."""

    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process = process
        self.log = log

    def output(self) -> str:
        """What the bridge logged so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def start_bridge(tmp_path: Path) -> Iterator[Callable[..., Bridge]]:
    """Factory: starts ``python -m bot.dingtalk_stream.bridge`` in ``.venv-stream``.

    Keyword arguments are its environment (``DINGTALK_STREAM_RASA_URL`` ...) on top of
    the test credentials; the bridge gets no other variable of this process.
    """
    python = stream_python()
    started: list[Bridge] = []

    def start(api_base: str, rasa_url: str, **env: str) -> Bridge:
        log = tmp_path / f"bridge-{len(started)}.log"
        environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1",
                   "DINGTALK_APP_KEY": APP_KEY, "DINGTALK_APP_SECRET": APP_SECRET,
                   "DINGTALK_STREAM_BRIDGE_SECRET": BRIDGE_SECRET,
                   "DINGTALK_STREAM_API_BASE": api_base,
                   "DINGTALK_STREAM_RASA_URL": rasa_url} | env
        with log.open("w") as out:
            process = subprocess.Popen([str(python), "-m", "bot.dingtalk_stream.bridge"],
                                       cwd=ROOT, env=environ, stdout=out,
                                       stderr=subprocess.STDOUT)
        bridge = Bridge(process, log)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.process.terminate()
    for bridge in started:
        try:
            bridge.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bridge.process.kill()
            bridge.process.wait()


async def echo(message: UserMessage) -> None:
    """Stands in for Rasa's agent: one reply through the message's output channel."""
    await message.output_channel.send_response(
        message.sender_id, {"text": f"You said: {message.text}"})


class ServedChannel:
    """A :class:`DingTalkStreamInput` served on 127.0.0.1 in front of a stand-in agent.

    Attributes:
        channel: The channel.
        url: Its message URL (what the bridge POSTs to).
        received: The user messages that reached the agent.
    """

    def __init__(self, channel: DingTalkStreamInput, url: str,
                 received: list[UserMessage]) -> None:
        self.channel = channel
        self.url = url
        self.received = received


@asynccontextmanager
async def _serve(channel: DingTalkStreamInput, on_new_message: OnNewMessage
                 ) -> AsyncIterator[str]:
    app = Sanic(f"dingtalk-stream-test-{uuid.uuid4().hex}", configure_logging=False)
    app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/dingtalk_stream")
    async with serve_sanic_on_loopback(app) as port:
        yield f"http://127.0.0.1:{port}/webhooks/dingtalk_stream"


@pytest.fixture
async def stream_channel() -> AsyncIterator[Callable[..., Awaitable[ServedChannel]]]:
    """Factory: the channel served as Rasa mounts it, with a stand-in agent
    (``on_new_message``, :func:`echo` by default); keyword arguments go to
    :class:`DingTalkStreamConfig` and ``webhook_origins``/``clock`` to the channel."""
    servers: list[Any] = []

    async def start(on_new_message: OnNewMessage = echo, *,
                    webhook_origins: tuple[str, ...] | None = None,
                    clock: Callable[[], float] | None = None,
                    **config: Any) -> ServedChannel:
        options: dict[str, Any] = {}
        if webhook_origins is not None:
            options["webhook_origins"] = webhook_origins
        if clock is not None:
            options["clock"] = clock
        channel = DingTalkStreamInput(
            DingTalkStreamConfig(**({"bridge_secret": BRIDGE_SECRET} | config)), **options)
        received: list[UserMessage] = []

        async def on_new(message: UserMessage) -> None:
            received.append(message)
            await on_new_message(message)

        server = _serve(channel, on_new)
        servers.append(server)
        base = await server.__aenter__()
        return ServedChannel(channel, f"{base}/message", received)

    yield start
    for server in reversed(servers):
        await server.__aexit__(None, None, None)
