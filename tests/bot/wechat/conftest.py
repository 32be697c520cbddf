"""Shared by the WeChat tests: WeChat's side of the channel, over real HTTP on 127.0.0.1.

WeChat itself is played by the tests: its requests are signed and encrypted with
wechatpy's own helpers (``WeChatCrypto.encrypt_message``, ``WeChatSigner``), so they
follow the platform's wire format, and :class:`FakeWeChatApi` stands in for its token
and customer-service send endpoints.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest
import xmltodict
from rasa.core.channels.channel import UserMessage
from sanic import Sanic
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from bot.wechat.channel import WeChatInput
from bot.wechat.config import WeChatConfig
from tests.served import serve_sanic_on_loopback

APP_ID = "wx0123456789abcdef"
APP_SECRET = "not-a-real-wechat-app-secret-0123"
TOKEN = "notARealWeChatToken42"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 letters and digits
OTHER_AES_KEY = "GFEDCBA9876543210zyxwvutsrqponmlkjihgfedcba"
ACCOUNT = "gh_0123456789ab"
OPENID = "oWeChatUser-0123456789abcdef"
NOW = 1_690_000_000
ACCESS_TOKEN = "not-a-real-access-token"

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]

# Sanic rewrites its protocol class when an app starts; only in test mode can a
# second app start in the same process. sanic-testing sets this flag the same way.
Sanic.test_mode = True


# --- WeChat's messages -----------------------------------------------------------------------


def message_xml(msg_type: str = "text", *, openid: str = OPENID, create_time: int = NOW,
                msg_id: int | None = None, **fields: str) -> str:
    """A message as WeChat POSTs it (before encryption); ``fields`` are added as is,
    e.g. ``Content="hi"`` or ``Event="subscribe"``."""
    body = {"ToUserName": ACCOUNT, "FromUserName": openid, "CreateTime": str(create_time),
            "MsgType": msg_type, **fields}
    if msg_type != "event":
        body["MsgId"] = str(msg_id if msg_id is not None else uuid.uuid4().int % 10**16)
    return xmltodict.unparse({"xml": body}, full_document=False)


def text_xml(content: str, **options: Any) -> str:
    """A text message."""
    return message_xml("text", Content=content, **options)


def signature(token: str, *values: str) -> str:
    """WeChat's SHA1 signature of the values (the SDK's signer)."""
    signer = WeChatSigner()
    signer.add_data(token, *values)
    return signer.signature


def signed_query(*, token: str = TOKEN, timestamp: int = NOW,
                 nonce: str = "nonce42") -> dict[str, str]:
    """The query of every request: ``signature``, ``timestamp``, ``nonce``."""
    return {"signature": signature(token, str(timestamp), nonce),
            "timestamp": str(timestamp), "nonce": nonce}


def encrypted(xml: str, *, token: str = TOKEN, aes_key: str = AES_KEY,
              app_id: str = APP_ID, timestamp: int = NOW,
              nonce: str | None = None) -> tuple[dict[str, str], bytes]:
    """A safe-mode POST of ``xml``: its query and body, made by ``WeChatCrypto``.

    ``encrypt_message`` makes the ``Encrypt`` value and its ``msg_signature``;
    WeChat POSTs them as ``<xml><ToUserName/><Encrypt/></xml>`` with the signature
    in the query (``encrypt_message``'s envelope is the passive reply's format).
    """
    nonce = nonce or uuid.uuid4().hex[:10]
    reply = xmltodict.parse(WeChatCrypto(token, aes_key, app_id).encrypt_message(
        xml, nonce, str(timestamp)))["xml"]
    query = signed_query(token=token, timestamp=timestamp, nonce=nonce) | {
        "openid": OPENID, "encrypt_type": "aes", "msg_signature": reply["MsgSignature"]}
    body = xmltodict.unparse({"xml": {"ToUserName": ACCOUNT, "Encrypt": reply["Encrypt"]}},
                             full_document=False)
    return query, body.encode()


def config(**changes: Any) -> WeChatConfig:
    """The tests' settings (safe mode, API at ``changes['api_base']``)."""
    return WeChatConfig(**({"app_id": APP_ID, "app_secret": APP_SECRET, "token": TOKEN,
                            "encoding_aes_key": AES_KEY} | changes))


# --- the send API ----------------------------------------------------------------------------


class FakeWeChatApi:
    """WeChat's token and customer-service send endpoints on 127.0.0.1, in a thread
    (so that one instance serves both the tests' event loops and a served Rasa).

    Attributes:
        token_requests: The query of each token request.
        sends: ``(access_token, JSON body)`` of each send request.
        raw_sends: The raw bytes of each send body.
        token_reply: The token endpoint's JSON; ``None``: a new token each time.
        send_errcodes: ``errcode`` values to answer the next sends with, in order
            (then 0).
        expires_in: The lifetime the token endpoint gives.
        hang: When set, sends wait for ``release`` (a timeout).
        origin: ``http://127.0.0.1:<port>``, the ``api_base``.
    """

    def __init__(self) -> None:
        self.token_requests: list[dict[str, str]] = []
        self.sends: list[tuple[str, dict[str, Any]]] = []
        self.raw_sends: list[bytes] = []
        self.token_reply: dict[str, Any] | None = None
        self.send_errcodes: list[int] = []
        self.expires_in = 7200
        self.tokens_issued = 0
        self.hang = False
        self.release = threading.Event()
        self.changed = threading.Condition()
        self.origin = ""

    def texts(self, openid: str | None = None) -> list[str]:
        """The contents of the text messages sent (to ``openid``)."""
        return [body["text"]["content"] for _, body in list(self.sends)
                if body.get("msgtype") == "text"
                and (openid is None or body.get("touser") == openid)]

    def handle(self, method: str, path: str, query: dict[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/cgi-bin/token":
            with self.changed:
                self.token_requests.append(query)
                if self.token_reply is not None:
                    return 200, self.token_reply
                if (query.get("appid"), query.get("secret"),
                        query.get("grant_type")) != (APP_ID, APP_SECRET, "client_credential"):
                    return 200, {"errcode": 40013, "errmsg": "invalid appid"}
                self.tokens_issued += 1
                return 200, {"access_token": f"{ACCESS_TOKEN}-{self.tokens_issued}",
                             "expires_in": self.expires_in}
        if method == "POST" and path == "/cgi-bin/message/custom/send":
            if self.hang:
                self.release.wait(30)
            with self.changed:
                self.raw_sends.append(body)
                self.sends.append((query.get("access_token", ""), json.loads(body)))
                errcode = self.send_errcodes.pop(0) if self.send_errcodes else 0
                self.changed.notify_all()
            return 200, {"errcode": errcode, "errmsg": "ok" if not errcode else "refused"}
        return 404, {"errcode": -1, "errmsg": "no such endpoint"}

    def wait_for_sends(self, count: int, timeout_s: float) -> bool:
        """Waits (blocking) until ``count`` messages were sent in all."""
        with self.changed:
            return self.changed.wait_for(lambda: len(self.sends) >= count, timeout_s)


def _handler(api: FakeWeChatApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            status, reply = api.handle(self.command, parts.path, dict(parse_qsl(parts.query)),
                                       self.rfile.read(length))
            data = json.dumps(reply, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *_: Any) -> None:  # the stand-in's access log: not ours
            pass

    return Handler


def start_fake_api() -> tuple[FakeWeChatApi, Callable[[], None]]:
    """Starts a :class:`FakeWeChatApi`; returns it and its stop function."""
    api = FakeWeChatApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.origin = f"http://127.0.0.1:{server.server_address[1]}"

    def stop() -> None:
        api.release.set()
        server.shutdown()
        server.server_close()

    return api, stop


@pytest.fixture
def wechat_api() -> Iterator[FakeWeChatApi]:
    """A fresh stand-in of WeChat's server API."""
    api, stop = start_fake_api()
    yield api
    stop()


# --- the channel over HTTP -------------------------------------------------------------------


class Clock:
    """A settable clock in seconds since the epoch, for the channel's ``clock``."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Account:
    """WeChat's side of a served :class:`WeChatInput`: POSTs and GETs its webhook.

    Attributes:
        channel: The channel.
        received: The user messages that reached "Rasa" (``on_new_message``).
    """

    def __init__(self, channel: WeChatInput, base_url: str,
                 session: aiohttp.ClientSession, received: list[UserMessage]) -> None:
        self.channel = channel
        self.base_url = base_url
        self.session = session
        self.received = received

    async def post(self, query: dict[str, str], body: bytes) -> tuple[int, str]:
        """POSTs to the webhook; waits for the background handling too."""
        async with self.session.post(f"{self.base_url}/webhook?{urlencode(query)}",
                                     data=body, headers={"Content-Type": "text/xml"}) as reply:
            result = reply.status, await reply.text()
        await self.channel.join()
        return result

    async def send(self, xml: str, **options: Any) -> tuple[int, str]:
        """POSTs ``xml`` as WeChat does in safe mode (``encrypted``'s options)."""
        return await self.post(*encrypted(xml, **options))

    async def get(self, query: dict[str, str]) -> tuple[int, str]:
        """GETs the webhook (the URL check)."""
        async with self.session.get(f"{self.base_url}/webhook?{urlencode(query)}") as reply:
            return reply.status, await reply.text()


async def echo(message: UserMessage) -> None:
    """Stands in for Rasa's agent: replies through the message's output channel."""
    await message.output_channel.send_response(message.sender_id,
                                               {"text": f"You said: {message.text}"})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def account(wechat_api: FakeWeChatApi, clock: Clock
                  ) -> AsyncIterator[Callable[..., Awaitable[Account]]]:
    """Factory: a WeChatInput served on 127.0.0.1 (as Rasa mounts it), sending to
    ``wechat_api``; keyword arguments change its :func:`config`."""
    async with aiohttp.ClientSession() as session:
        servers: list[Any] = []

        async def start(on_new_message: OnNewMessage = echo, **changes: Any) -> Account:
            settings = config(**({"api_base": wechat_api.origin, "send_timeout_s": 2.0}
                                 | changes))
            channel = WeChatInput(settings, clock=clock)
            received: list[UserMessage] = []

            async def on_new(message: UserMessage) -> None:
                received.append(message)
                await on_new_message(message)

            app = Sanic(f"wechat-test-{uuid.uuid4().hex}", configure_logging=False)
            app.blueprint(channel.blueprint(on_new), url_prefix="/webhooks/wechat")
            server = serve_sanic_on_loopback(app)
            servers.append(server)
            port = await server.__aenter__()
            return Account(channel, f"http://127.0.0.1:{port}/webhooks/wechat", session,
                           received)

        yield start
        for server in reversed(servers):
            await server.__aexit__(None, None, None)


def assert_no_secrets(caplog: pytest.LogCaptureFixture, *also: str) -> None:
    """No log line names a secret or a token (or any of ``also``)."""
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (APP_SECRET, TOKEN, AES_KEY, ACCESS_TOKEN, *also):
        assert secret not in logged
