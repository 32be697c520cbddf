"""The web chat channel: its static files and its socket.io protocol (no model, no browser).

sanic_testing is not installed, so each test serves the channel's blueprint on a real
localhost socket with a stub message handler that echoes, and talks to it with aiohttp
and python-socketio's client. The security of the sessions (signed ids, customer
tokens, origins) is tested in tests/bot/test_webchat_security.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
import yaml
from rasa.core.channels.channel import UserMessage
from sanic import Sanic
from yarl import URL

from bot.webchat import (
    DEFAULT_SOCKETIO_PATH,
    STATIC_DIR,
    IdentityPolicy,
    WebChatInput,
    render_index,
    static_file,
)

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/webhooks/webchat"
BUTTONS = [{"title": "Yes, cancel it", "payload": "/affirm"},
           {"title": "No, keep it", "payload": "/deny"}]
SESSION_SECRET = "test-only webchat session secret, 32+ bytes long"
IDENTITY_SECRET = "test-only shop identity secret, 32+ bytes long"


async def echo(message: UserMessage) -> None:
    """A stand-in for the agent: echoes, asks with buttons for ``/buttons``, and tells
    the sender id and the metadata for ``/whoami``."""
    output = message.output_channel
    if message.text == "/buttons":
        await output.send_text_with_buttons(message.sender_id, "Cancel it?", BUTTONS)
    elif message.text == "/whoami":
        await output.send_text_message(message.sender_id, json.dumps(
            {"sender": message.sender_id, "channel": message.input_channel,
             "metadata": message.metadata}))
    else:
        await output.send_text_message(message.sender_id, f"echo: {message.text}")


def channel(**options: Any) -> WebChatInput:
    """The channel as the tests serve it: fixed secrets, customer tokens accepted."""
    options = {"title": "Test <shop> & co", "session_secret": SESSION_SECRET,
               "identity": IdentityPolicy(secret=IDENTITY_SECRET)} | options
    return WebChatInput(**options)


@asynccontextmanager
async def serving(webchat: WebChatInput,
                  on_new_message: Callable[[UserMessage], Awaitable[Any]] = echo
                  ) -> AsyncIterator[str]:
    """Serves the channel's blueprint on a free localhost port; yields its base URL."""
    app = Sanic(f"webchat_test_{uuid.uuid4().hex[:12]}")
    blueprint = webchat.blueprint(on_new_message)
    # The test clients long-poll (python-engineio's websocket client needs a newer
    # aiohttp than Rasa's); short pings end a closed client's last poll at once.
    blueprint.ctx.sio.eio.ping_interval = blueprint.ctx.sio.eio.ping_timeout = 0.5
    app.blueprint(blueprint, url_prefix=PREFIX)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        served = await app.create_server(sock=sock, return_asyncio_server=True,
                                         access_log=False)
        try:
            await served.startup()
            await served.before_start()
            await served.after_start()
            yield f"http://127.0.0.1:{port}"
            await served.before_stop()
        finally:
            for connection in list(served.connections):
                connection.close_if_idle()
            await served.close()
            await served.after_stop()


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sanic 21.12 rewrites some of its methods at the first start-up of a process; test
    # mode starts each app from the originals, so that several apps can start in turn.
    monkeypatch.setattr(Sanic, "test_mode", True)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """The channel of :func:`channel` served on a free localhost port; its base URL."""
    async with serving(channel()) as url:
        yield url


async def fetch(url: str | URL, headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:
    """GETs ``url`` without following redirects: status, headers and body."""
    async with aiohttp.ClientSession() as session:
        async with session.get(url, allow_redirects=False, headers=headers) as response:
            return response.status, dict(response.headers), await response.read()


async def connect(server: str, **options: Any) -> socketio.AsyncClient:
    """A socket.io client connected to the channel, as the page connects."""
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(server, socketio_path=DEFAULT_SOCKETIO_PATH, transports=["polling"],
                      **options)
    return sio


@pytest.fixture
async def client(server: str) -> AsyncIterator[socketio.AsyncClient]:
    """A socket.io client connected to the channel, as the page connects."""
    sio = await connect(server)
    try:
        yield sio
    finally:
        await sio.disconnect()


async def request_session(sio: socketio.AsyncClient, session_id: str | None,
                          **payload: Any) -> str:
    """Sends ``session_request`` and returns the id of ``session_confirm``."""
    confirmed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    sio.on("session_confirm", confirmed.set_result)
    await sio.emit("session_request", {"session_id": session_id} | payload)
    return await asyncio.wait_for(confirmed, 10)


async def utter(sio: socketio.AsyncClient, text: str, session_id: str,
                **payload: Any) -> list[dict]:
    """Sends a user message and returns the bot messages that answer it."""
    answers: asyncio.Queue[dict] = asyncio.Queue()
    sio.on("bot_uttered", answers.put_nowait)
    await sio.emit("user_uttered", {"message": text, "session_id": session_id} | payload)
    received = [await asyncio.wait_for(answers.get(), 10)]
    while True:
        try:
            received.append(await asyncio.wait_for(answers.get(), 0.3))
        except asyncio.TimeoutError:
            return received


async def whoami(sio: socketio.AsyncClient, session_id: str, **payload: Any) -> dict:
    """What the agent saw of this socket's message: sender id, channel, metadata."""
    [answer] = await utter(sio, "/whoami", session_id, **payload)
    return json.loads(answer["text"])


# -- static files -------------------------------------------------------------------------


async def test_index_is_served_with_title_and_socket_path(server: str) -> None:
    status, headers, body = await fetch(f"{server}{PREFIX}/")
    page = body.decode()
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "<title>Test &lt;shop&gt; &amp; co</title>" in page
    assert f'data-socketio-path="{DEFAULT_SOCKETIO_PATH}"' in page
    assert "{{" not in page


async def test_index_without_slash_redirects(server: str) -> None:
    status, headers, _ = await fetch(f"{server}{PREFIX}?lang=en")
    assert status == 302
    assert headers["Location"] == f"{PREFIX}/?lang=en"
    assert "Location" not in (await fetch(f"{server}{PREFIX}/"))[1]  # headers not shared


@pytest.mark.parametrize(("name", "content_type"), [
    ("index.html", "text/html; charset=utf-8"),
    ("webchat.js", "text/javascript; charset=utf-8"),
    ("webchat.css", "text/css; charset=utf-8"),
    ("socket.io.min.js", "text/javascript; charset=utf-8"),
    ("socket.io-client.LICENSE.txt", "text/plain; charset=utf-8"),
])
async def test_assets_are_served_with_their_content_type(server: str, name: str,
                                                         content_type: str) -> None:
    status, headers, body = await fetch(f"{server}{PREFIX}/{name}")
    assert status == 200
    assert headers["Content-Type"] == content_type
    if name != "index.html":
        assert body == (STATIC_DIR / name).read_bytes()


def test_socket_io_client_is_vendored_with_its_licence() -> None:
    script = (STATIC_DIR / "socket.io.min.js").read_text(encoding="utf-8")
    assert script.startswith("/*!\n * Socket.IO v4.")
    assert "Released under the MIT License." in script[:200]
    notice = (STATIC_DIR / "socket.io-client.LICENSE.txt").read_text(encoding="utf-8")
    assert "socket.io-client 4." in notice and "Permission is hereby granted" in notice


def test_page_loads_nothing_from_elsewhere() -> None:
    for name in ("index.html", "webchat.js", "webchat.css"):
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name


@pytest.mark.parametrize("path", [
    "nope.js",
    "missing.html",
    "webchat.py",
    ".hidden.js",
    "%2e%2e/webchat.py",
    "..%2fwebchat.py",
    "%2e%2e%2f%2e%2e%2fpyproject.toml",
    "../webchat.py",
    "../../pyproject.toml",
    "sub/../index.html",
])
async def test_unknown_files_and_traversal_are_404(server: str, path: str) -> None:
    # encoded=True: the path goes out as written, dot segments and all.
    status, _, body = await fetch(URL(f"{server}{PREFIX}/{path}", encoded=True))
    assert status == 404
    assert b"import" not in body and b"[project]" not in body


@pytest.mark.parametrize("name", [
    "", ".", "..", "../webchat.py", "../../pyproject.toml", "/etc/passwd", "./index.html",
    "sub/../index.html", "..\\webchat.py", "index.html\x00.js", ".gitignore", "nope.js",
])
def test_static_file_refuses_anything_outside_the_assets(name: str) -> None:
    assert static_file(name) is None


def test_static_file_refuses_symlinks_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "assets"
    root.mkdir()
    (tmp_path / "secret.js").write_text("secret")
    (root / "link.js").symlink_to(tmp_path / "secret.js")
    (root / "app.js").write_text("ok")
    (root / "notes.md").write_text("not served")
    assert static_file("link.js", root) is None
    assert static_file("notes.md", root) is None
    assert static_file("app.js", root) == (root / "app.js").resolve()


def test_render_index_escapes() -> None:
    page = render_index('"><script>', "/a\"b")
    assert '"><script>' not in page
    assert "&quot;&gt;&lt;script&gt;" in page and 'data-socketio-path="/a&quot;b"' in page


# -- socket.io protocol -------------------------------------------------------------------


async def test_engine_io_handshake_below_the_page(server: str) -> None:
    status, _, body = await fetch(f"{server}{DEFAULT_SOCKETIO_PATH}/?EIO=4&transport=polling")
    assert status == 200
    assert body.startswith(b'0{"sid":')


async def test_session_request_without_id_gets_a_new_one(client: socketio.AsyncClient) -> None:
    session_id = await request_session(client, None)
    session_uuid, _, signature = session_id.partition(".")
    assert len(session_uuid) == 32 and int(session_uuid, 16) >= 0
    assert len(signature) == 43


async def test_replies_reach_a_persistent_session(client: socketio.AsyncClient) -> None:
    # Rasa 3.6's own handler does not await enter_room: this reply would be lost.
    session_id = await request_session(client, None)
    assert await utter(client, "hello", session_id) == [{"text": "echo: hello"}]


async def test_buttons_arrive_as_quick_replies(client: socketio.AsyncClient) -> None:
    session_id = await request_session(client, None)
    [message] = await utter(client, "/buttons", session_id)
    assert message["text"] == "Cancel it?"
    assert [(b["title"], b["payload"]) for b in message["quick_replies"]] == [
        ("Yes, cancel it", "/affirm"), ("No, keep it", "/deny")]


async def test_a_new_connection_continues_the_session(server: str) -> None:
    session_id, senders = None, []
    for attempt in range(2):  # a page reload: a new socket with the stored session id
        sio = await connect(server)
        try:
            confirmed = await request_session(sio, session_id)
            assert session_id is None or confirmed == session_id
            session_id = confirmed
            assert await utter(sio, f"try {attempt}", session_id) == [
                {"text": f"echo: try {attempt}"}]
            senders.append((await whoami(sio, session_id))["sender"])
        finally:
            await sio.disconnect()
    # One Rasa conversation, named in the channel's namespace, without the signature.
    assert senders[0] == senders[1] == f"webchat:{session_id.partition('.')[0]}"


async def test_messages_are_from_the_webchat_channel(client: socketio.AsyncClient) -> None:
    session_id = await request_session(client, None)
    seen = await whoami(client, session_id, metadata={"page": "/checkout"})
    assert seen["channel"] == "webchat"
    assert seen["metadata"] == {"page": "/checkout"}  # anonymous: no verified_identity


# -- configuration ------------------------------------------------------------------------


def test_from_credentials_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_IDENTITY_SECRET", raising=False)
    channel = WebChatInput.from_credentials(None)
    assert isinstance(channel, WebChatInput)
    assert channel.name() == "webchat" and channel.url_prefix() == "webchat"
    assert channel.session_persistence is True
    assert channel.socketio_path == DEFAULT_SOCKETIO_PATH
    assert (channel.user_message_evt, channel.bot_message_evt) == ("user_uttered",
                                                                   "bot_uttered")
    assert channel.identity == IdentityPolicy(secret=None, require_token=False)
    assert channel.allowed_origins == ()


def test_credentials_yml_registers_the_channel() -> None:
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text(encoding="utf-8"))
    assert "bot.webchat.WebChatInput" in credentials
    channel = WebChatInput.from_credentials(credentials["bot.webchat.WebChatInput"])
    assert isinstance(channel, WebChatInput) and channel.title


# -- untrusted socket.io payloads ---------------------------------------------------------

SESSION = "<the confirmed session id>"  # replaced by the session the test requested
ODD_PAYLOADS = {
    "extra fields": ({"message": "hi", "session_id": SESSION, "foo": {"bar": [1]},
                      "__proto__": {"admin": True}}, "echo: hi"),
    "metadata not JSON": ({"message": "hi", "session_id": SESSION, "metadata": "{oops"},
                          "echo: hi"),
    "metadata a list": ({"message": "hi", "session_id": SESSION, "metadata": [1, 2]},
                        "echo: hi"),
    "text a number": ({"message": 5, "session_id": SESSION}, None),
    "text an object": ({"message": {"text": "hi"}, "session_id": SESSION}, None),
    "no text": ({"session_id": SESSION}, None),
    "a string": ("hello", None),
    "a list": (["hello"], None),
    "no argument": (None, None),
    "two arguments": (({"message": "hi", "session_id": SESSION}, "extra"), None),
    "another session": ({"message": "hi", "session_id": "someone-else"}, None),
    "session id an object": ({"message": "hi", "session_id": {"$ne": ""}}, None),
}


def with_session(payload: Any, session_id: str) -> Any:
    """``payload`` with :data:`SESSION` replaced by ``session_id``."""
    if payload == SESSION:
        return session_id
    if isinstance(payload, dict):
        return {key: with_session(value, session_id) for key, value in payload.items()}
    if isinstance(payload, (list, tuple)):
        return type(payload)(with_session(value, session_id) for value in payload)
    return payload


@pytest.mark.parametrize("name", list(ODD_PAYLOADS))
async def test_unexpected_payloads_are_ignored_and_the_session_goes_on(
        client: socketio.AsyncClient, name: str) -> None:
    session_id = await request_session(client, None)
    payload, expected = with_session(ODD_PAYLOADS[name], session_id)
    answers: asyncio.Queue[dict] = asyncio.Queue()
    client.on("bot_uttered", answers.put_nowait)

    if payload is None:
        await client.emit("user_uttered")
    else:
        await client.emit("user_uttered", payload)

    if expected is None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(answers.get(), 1)
    else:
        assert (await asyncio.wait_for(answers.get(), 10))["text"] == expected
    assert await utter(client, "still there?", session_id) == [{"text": "echo: still there?"}]


async def test_a_message_before_any_session_request_is_ignored(
        client: socketio.AsyncClient) -> None:
    answers: asyncio.Queue[dict] = asyncio.Queue()
    client.on("bot_uttered", answers.put_nowait)

    await client.emit("user_uttered", {"message": "hi", "session_id": "guessed"})

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(answers.get(), 1)
