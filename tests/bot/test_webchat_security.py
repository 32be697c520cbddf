"""The web chat's trust boundary: server-issued session ids, customer tokens, origins.

Every refusal has a test: a forged, guessed or re-signed session id gets a new
session; a session bound to a customer is not resumed by another (or no) customer;
an invalid, expired, unverifiable or (when required) missing customer token ends
the socket; a page of a foreign origin cannot connect. Served like
tests/bot/test_webchat.py (a real localhost socket, python-socketio's client).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import jwt
import pytest
import socketio
from rasa.shared.exceptions import InvalidConfigException

from bot import identity
from bot.webchat import (
    DEFAULT_SOCKETIO_PATH,
    IdentityPolicy,
    SessionRefused,
    WebChatInput,
    allowed_origins_option,
    identity_policy,
    normalise_origin,
    origin_allowed,
    render_index,
    request_origins,
)
from bot.webchat_session import SessionSigner
from tests.bot.test_webchat import (
    IDENTITY_SECRET,
    PREFIX,
    SESSION_SECRET,
    channel,
    connect,
    fetch,
    request_session,
    sanic_test_mode,  # noqa: F401 - an autouse fixture, used by importing it
    serving,
    utter,
    whoami,
)

SHOP = "https://shop.example"


def token(customer_id: str = "C-001", secret: str = IDENTITY_SECRET, ttl_s: int = 600,
          now: float | None = None) -> str:
    """A customer token as the shop's backend makes it."""
    return identity.make_customer_token(customer_id, secret, ttl_s, now=now)


async def refusal(sio: socketio.AsyncClient, **payload: Any) -> dict:
    """Sends ``session_request`` and returns the ``session_refused`` answer; fails on a
    ``session_confirm``."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[tuple[str, Any]] = loop.create_future()
    disconnected = asyncio.Event()
    sio.on("session_confirm", lambda data: answer.done() or answer.set_result(("confirm", data)))
    sio.on("session_refused", lambda data: answer.done() or answer.set_result(("refused", data)))
    sio.on("disconnect", disconnected.set)
    await sio.emit("session_request", {"session_id": None} | payload)
    kind, data = await asyncio.wait_for(answer, 10)
    assert kind == "refused", data
    await asyncio.wait_for(disconnected.wait(), 10)  # and the server hangs up
    return data


@pytest.fixture
async def server() -> Any:
    async with serving(channel()) as url:
        yield url


# -- session ids --------------------------------------------------------------------------


@pytest.mark.parametrize("requested", [
    "session-1",  # a client-chosen id, accepted by Rasa's channel
    "0" * 32,
    "0" * 32 + "." + "A" * 43,
    SessionSigner("another server's secret, 32+ bytes long").issue(),
], ids=["chosen", "uuid-only", "bad-signature", "other-secret"])
async def test_a_session_id_the_server_did_not_issue_gets_a_new_one(
        server: str, requested: str) -> None:
    sio = await connect(server)
    try:
        confirmed = await request_session(sio, requested)
        assert confirmed != requested
        assert SessionSigner(SESSION_SECRET).verify(confirmed)
        assert await utter(sio, "hi", confirmed) == [{"text": "echo: hi"}]
    finally:
        await sio.disconnect()


async def test_a_tampered_signature_gets_a_new_session(server: str) -> None:
    issued = SessionSigner(SESSION_SECRET).issue()
    tampered = issued[:-1] + ("A" if issued[-1] != "A" else "B")
    sio = await connect(server)
    try:
        assert await request_session(sio, tampered) not in (issued, tampered)
        assert await request_session(sio, issued) == issued  # the genuine one still works
    finally:
        await sio.disconnect()


async def test_a_guessed_session_id_does_not_receive_the_victims_replies(server: str) -> None:
    victim, attacker = await connect(server), await connect(server)
    try:
        victim_id = await request_session(victim, None)
        session_uuid = victim_id.partition(".")[0]
        # The attacker knows the uuid (e.g. from a log) but cannot sign it.
        for guess in (session_uuid, f"{session_uuid}.{'x' * 43}", victim_id[:-2]):
            assert await request_session(attacker, guess) != victim_id
        overheard: list[dict] = []
        attacker.on("bot_uttered", overheard.append)

        assert await utter(victim, "my address is 1 Main St", victim_id) == [
            {"text": "echo: my address is 1 Main St"}]
        await asyncio.sleep(0.5)
        assert overheard == []
    finally:
        await victim.disconnect()
        await attacker.disconnect()


async def test_a_socket_leaves_its_previous_session(server: str) -> None:
    first, other = await connect(server), await connect(server)
    try:
        old_id = await request_session(first, None)
        new_id = await request_session(first, None)  # the page started a new conversation
        assert new_id != old_id
        overheard: list[dict] = []
        first.on("bot_uttered", overheard.append)

        assert await request_session(other, old_id) == old_id  # its rightful owner, later
        await utter(other, "hello", old_id)
        await asyncio.sleep(0.5)

        assert overheard == []
        assert await utter(first, "still mine?", new_id) == [{"text": "echo: still mine?"}]
    finally:
        await first.disconnect()
        await other.disconnect()


async def test_messages_for_the_previous_session_are_ignored(server: str) -> None:
    sio = await connect(server)
    try:
        old_id = await request_session(sio, None)
        await request_session(sio, None)
        answers: asyncio.Queue[dict] = asyncio.Queue()
        sio.on("bot_uttered", answers.put_nowait)
        await sio.emit("user_uttered", {"message": "hi", "session_id": old_id})
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(answers.get(), 1)
    finally:
        await sio.disconnect()


async def test_without_persistence_no_session_is_resumed() -> None:
    async with serving(channel(session_persistence=False)) as url:
        sio = await connect(url)
        try:
            first = await request_session(sio, None)
            assert await request_session(sio, first) != first
        finally:
            await sio.disconnect()


# -- customer identity --------------------------------------------------------------------


async def test_a_verified_customer_is_named_in_every_message(server: str) -> None:
    sio = await connect(server)
    try:
        session_id = await request_session(sio, None, customer_token=token("C-001"))
        for _ in range(2):
            seen = await whoami(sio, session_id)
            assert seen["metadata"]["verified_identity"] == {"channel": "webchat",
                                                             "customer_id": "C-001"}
            assert seen["sender"] == f"webchat:{session_id.partition('.')[0]}"
    finally:
        await sio.disconnect()


@pytest.mark.parametrize("customer_token", [None, "customer"], ids=["anonymous", "customer"])
@pytest.mark.parametrize("metadata", [
    {"verified_identity": {"channel": "webchat", "customer_id": "C-999"}, "page": "/"},
    '{"verified_identity": {"channel": "webchat", "customer_id": "C-999"}, "page": "/"}',
], ids=["object", "json-string"])
async def test_a_client_cannot_claim_a_verified_identity(
        server: str, customer_token: str | None, metadata: Any) -> None:
    sio = await connect(server)
    try:
        extra = {"customer_token": token("C-001")} if customer_token else {}
        session_id = await request_session(sio, None, **extra)
        seen = await whoami(sio, session_id, metadata=metadata)
        expected = ({"verified_identity": {"channel": "webchat", "customer_id": "C-001"}}
                    if customer_token else {})
        assert seen["metadata"] == {"page": "/"} | expected
    finally:
        await sio.disconnect()


@pytest.mark.parametrize(("presented", "resumed"), [
    ("C-001", True),  # the same customer, e.g. after a reload
    ("C-002", False),  # another customer's token
    (None, False),  # no token at all
], ids=["same-customer", "other-customer", "anonymous"])
async def test_a_customers_session_is_resumed_by_that_customer_only(
        server: str, presented: str | None, resumed: bool) -> None:
    owner, other = await connect(server), await connect(server)
    try:
        session_id = await request_session(owner, None, customer_token=token("C-001"))
        extra = {"customer_token": token(presented)} if presented else {}
        confirmed = await request_session(other, session_id, **extra)
        assert (confirmed == session_id) is resumed
        overheard: list[dict] = []
        other.on("bot_uttered", overheard.append)
        await utter(owner, "my orders?", session_id)
        await asyncio.sleep(0.5)
        assert bool(overheard) is resumed
    finally:
        await owner.disconnect()
        await other.disconnect()


async def test_an_anonymous_session_cannot_become_a_customers(server: str) -> None:
    sio = await connect(server)
    try:
        anonymous = await request_session(sio, None)
        confirmed = await request_session(sio, anonymous, customer_token=token("C-001"))
        assert confirmed != anonymous
        seen = await whoami(sio, confirmed)
        assert seen["metadata"]["verified_identity"]["customer_id"] == "C-001"
    finally:
        await sio.disconnect()


def _alg_none(customer_id: str = "C-001") -> str:
    now = int(time.time())
    return jwt.encode({"sub": customer_id, "iat": now, "exp": now + 600}, key=None,
                      algorithm="none")


@pytest.mark.parametrize(("make_token", "reason"), [
    (lambda: token(secret="not the shop's secret, but 32+ bytes long"), "token_invalid"),
    (lambda: token(now=time.time() - 3600, ttl_s=60), "token_expired"),
    (_alg_none, "token_invalid"),
    (lambda: token()[:-3], "token_invalid"),
    (lambda: "not a token", "token_invalid"),
    (lambda: {"sub": "C-001"}, "token_invalid"),
], ids=["forged", "expired", "alg-none", "truncated", "garbage", "object"])
async def test_a_bad_customer_token_is_refused(
        server: str, caplog: pytest.LogCaptureFixture, make_token: Any, reason: str) -> None:
    caplog.set_level(logging.INFO, logger="bot.webchat")
    presented = make_token()
    sio = await connect(server)
    try:
        assert await refusal(sio, customer_token=presented) == {"reason": reason}
        assert not sio.connected
    finally:
        await sio.disconnect()
    assert "refused a session" in caplog.text
    if isinstance(presented, str):
        assert presented not in caplog.text and presented[-20:] not in caplog.text


async def test_a_refused_socket_leaves_its_session(server: str) -> None:
    sio, other = await connect(server), await connect(server)
    try:
        session_id = await request_session(sio, None)
        await refusal(sio, session_id=session_id, customer_token="forged")
        assert await request_session(other, session_id) == session_id
        assert await utter(other, "hi", session_id) == [{"text": "echo: hi"}]
    finally:
        await sio.disconnect()
        await other.disconnect()


async def test_without_the_identity_secret_tokens_are_refused() -> None:
    async with serving(channel(identity=IdentityPolicy(secret=None))) as url:
        sio = await connect(url)
        try:
            assert await refusal(sio, customer_token=token()) == {
                "reason": "identity_unavailable"}
        finally:
            await sio.disconnect()
        anonymous = await connect(url)
        try:
            session_id = await request_session(anonymous, None)
            assert "verified_identity" not in (await whoami(anonymous, session_id))["metadata"]
        finally:
            await anonymous.disconnect()


@pytest.mark.parametrize("payload", [{}, {"customer_token": None}, {"customer_token": ""}],
                         ids=["absent", "null", "empty"])
async def test_a_required_token_must_be_there(payload: dict) -> None:
    required = IdentityPolicy(secret=IDENTITY_SECRET, require_token=True)
    async with serving(channel(identity=required)) as url:
        sio = await connect(url)
        try:
            assert await refusal(sio, **payload) == {"reason": "token_required"}
        finally:
            await sio.disconnect()
        customer = await connect(url)
        try:
            session_id = await request_session(customer, None, customer_token=token())
            assert (await whoami(customer, session_id))["metadata"]["verified_identity"]
        finally:
            await customer.disconnect()


def test_identity_policy_decisions() -> None:
    now = 1_700_000_000
    valid = token("C-7", now=now)
    assert IdentityPolicy(secret=IDENTITY_SECRET).customer(None) is None
    assert IdentityPolicy(secret=IDENTITY_SECRET).customer(valid, now=now) == "C-7"
    with pytest.raises(SessionRefused) as refused:
        IdentityPolicy(secret=None).customer(valid, now=now)
    assert refused.value.reason == "identity_unavailable"
    with pytest.raises(SessionRefused) as refused:
        IdentityPolicy(secret=IDENTITY_SECRET, require_token=True).customer("")
    assert refused.value.reason == "token_required"
    with pytest.raises(SessionRefused) as refused:
        IdentityPolicy(secret=IDENTITY_SECRET).customer(valid, now=now + 3600)
    assert refused.value.reason == "token_expired"
    assert valid not in str(refused.value)


# -- origins ------------------------------------------------------------------------------


async def handshake(url: str, origin: str | None, **headers: str) -> tuple[int, dict]:
    """The first engine.io request of a page of ``origin``: status and headers."""
    if origin is not None:
        headers["Origin"] = origin
    status, answer_headers, _ = await fetch(
        f"{url}{DEFAULT_SOCKETIO_PATH}/?EIO=4&transport=polling", headers=headers)
    return status, answer_headers


@pytest.mark.parametrize("origin", [
    "https://evil.example", "http://127.0.0.1.evil.example", "null", "http://localhost",
    "https://127.0.0.1", "file://", "http://127.0.0.1:1",
])
async def test_a_foreign_origin_is_refused_at_the_handshake(server: str, origin: str) -> None:
    status, headers = await handshake(server, origin)
    assert status == 400
    assert "Access-Control-Allow-Origin" not in headers


async def test_a_foreign_origin_cannot_open_a_websocket(server: str) -> None:
    url = f"{server.replace('http', 'ws')}{DEFAULT_SOCKETIO_PATH}/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url, origin="https://evil.example")
    assert refused.value.status == 400


async def test_the_servers_own_origin_and_non_browsers_are_accepted(server: str) -> None:
    status, headers = await handshake(server, server)  # the page itself
    assert status == 200 and headers["Access-Control-Allow-Origin"] == server
    assert (await handshake(server, None))[0] == 200  # python-socketio, curl: no Origin


async def test_a_reverse_proxy_origin_is_accepted(server: str) -> None:
    status, _ = await handshake(server, "https://chat.example", **{
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example"})
    assert status == 200


async def test_configured_origins_are_accepted() -> None:
    async with serving(channel(allowed_origins=[SHOP, "http://localhost:8080"])) as url:
        for origin in (SHOP, "http://localhost:8080", url):
            status, headers = await handshake(url, origin)
            assert status == 200 and headers["Access-Control-Allow-Origin"] == origin
            assert "Access-Control-Allow-Credentials" not in headers  # no cookies needed
        assert (await handshake(url, "https://evil.example"))[0] == 400
        sio = await connect(url, headers={"Origin": SHOP})
        try:
            session_id = await request_session(sio, None)
            assert await utter(sio, "hi", session_id) == [{"text": "echo: hi"}]
        finally:
            await sio.disconnect()


async def test_a_foreign_page_cannot_connect_a_socket(server: str) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(server, socketio_path=DEFAULT_SOCKETIO_PATH, transports=["polling"],
                          headers={"Origin": "https://evil.example"})


@pytest.mark.parametrize(("value", "expected"), [
    ("https://Shop.Example", "https://shop.example"),
    ("https://shop.example/", "https://shop.example"),
    ("https://shop.example:443", "https://shop.example"),
    ("http://shop.example:80", "http://shop.example"),
    ("http://localhost:5005", "http://localhost:5005"),
    ("http://[::1]:5005", "http://[::1]:5005"),
    ("*", None), ("null", None), ("shop.example", None), ("ftp://shop.example", None),
    ("https://shop.example/chat", None), ("https://user@shop.example", None),
    ("https://shop.example?x=1", None), ("https://shop.example:port", None), (None, None),
])
def test_normalise_origin(value: Any, expected: str | None) -> None:
    assert normalise_origin(value) == expected


def test_request_origins_follow_host_and_proxy_headers() -> None:
    environ = {"HTTP_HOST": "127.0.0.1:5005", "wsgi.url_scheme": "http"}
    assert request_origins(environ) == {"http://127.0.0.1:5005"}
    proxied = environ | {"HTTP_X_FORWARDED_PROTO": "https",
                         "HTTP_X_FORWARDED_HOST": "chat.example, internal"}
    assert "https://chat.example" in request_origins(proxied)
    assert not origin_allowed("https://evil.example", proxied)
    assert origin_allowed("https://shop.example", environ, ("https://shop.example",))
    assert not origin_allowed(None, environ)


@pytest.mark.parametrize("value", ["*", ["*"], ["shop.example"], [SHOP, "https://x/y"],
                                   {"origin": SHOP}, [None]])
def test_allowed_origins_option_refuses_what_is_not_an_origin(value: Any) -> None:
    with pytest.raises(InvalidConfigException, match="allowed_origins"):
        allowed_origins_option(value)


def test_the_channel_refuses_what_is_not_an_origin() -> None:
    with pytest.raises(ValueError, match="shop.example/chat"):
        WebChatInput(session_secret=SESSION_SECRET,
                     allowed_origins=[SHOP, "https://shop.example/chat"])


def test_allowed_origins_option_normalises() -> None:
    assert allowed_origins_option(None) == ()
    assert allowed_origins_option("https://Shop.example/") == (SHOP,)
    assert allowed_origins_option([SHOP, "https://shop.example:443"]) == (SHOP,)


async def test_only_allowed_origins_may_frame_the_page() -> None:
    async with serving(channel(allowed_origins=[SHOP])) as url:
        status, headers, body = await fetch(f"{url}{PREFIX}/")
    assert status == 200
    assert headers["Content-Security-Policy"] == f"frame-ancestors 'self' {SHOP}"
    assert f'data-embed-origins="{SHOP}"' in body.decode()


def test_render_index_escapes_the_embed_origins() -> None:
    page = render_index("t", "/p", embed_origins=['"><script>'])
    assert '"><script>' not in page
    assert 'data-embed-origins="&quot;&gt;&lt;script&gt;"' in page


# -- configuration ------------------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("WEBCHAT_SESSION_SECRET", "SHOP_IDENTITY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_from_credentials_reads_the_secrets_from_the_environment(
        environment: pytest.MonkeyPatch) -> None:
    environment.setenv("WEBCHAT_SESSION_SECRET", SESSION_SECRET)
    environment.setenv("SHOP_IDENTITY_SECRET", IDENTITY_SECRET)
    webchat = WebChatInput.from_credentials({"require_customer_token": True,
                                             "allowed_origins": [SHOP]})
    assert isinstance(webchat, WebChatInput)
    assert webchat.identity == IdentityPolicy(secret=IDENTITY_SECRET, require_token=True)
    assert webchat.allowed_origins == (SHOP,)
    issued = SessionSigner(SESSION_SECRET).issue("C-1")
    assert webchat.sessions.verify(issued, "C-1")  # sessions survive a restart


def test_without_a_session_secret_a_random_one_is_used_with_a_warning(
        environment: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    first = WebChatInput.from_credentials({})
    second = WebChatInput.from_credentials({})
    assert "WEBCHAT_SESSION_SECRET is not set" in caplog.text
    assert not second.sessions.verify(first.sessions.issue())


@pytest.mark.parametrize(("variables", "options", "problem"), [
    ({"WEBCHAT_SESSION_SECRET": "short"}, {}, "WEBCHAT_SESSION_SECRET"),
    ({"SHOP_IDENTITY_SECRET": "short"}, {}, "SHOP_IDENTITY_SECRET"),
    ({}, {"require_customer_token": True}, "SHOP_IDENTITY_SECRET"),
    ({"SHOP_IDENTITY_SECRET": IDENTITY_SECRET}, {"require_customer_token": "yes"},
     "require_customer_token"),
    ({}, {"allowed_origins": "*"}, "allowed_origins"),
])
def test_from_credentials_refuses_unusable_settings(
        environment: pytest.MonkeyPatch, variables: dict[str, str], options: dict,
        problem: str) -> None:
    for name, value in variables.items():
        environment.setenv(name, value)
    with pytest.raises(InvalidConfigException, match=problem) as refused:
        WebChatInput.from_credentials(options)
    assert "short" not in str(refused.value)


def test_the_policy_does_not_show_its_secret() -> None:
    assert IDENTITY_SECRET not in repr(IdentityPolicy(secret=IDENTITY_SECRET))


def test_identity_policy_from_the_environment() -> None:
    assert identity_policy({}, None) == IdentityPolicy()
    assert identity_policy({"SHOP_IDENTITY_SECRET": IDENTITY_SECRET}, False) == IdentityPolicy(
        secret=IDENTITY_SECRET)
