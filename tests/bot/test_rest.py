"""bot.rest: the REST channel behind its checks, over real HTTP on 127.0.0.1.

Cross-site form posts (415), the optional bearer token (401), sender ids in the
``rest:`` namespace, and the metadata a caller may not set.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from rasa.shared.exceptions import InvalidConfigException
from sanic import Sanic

from bot.rest import (
    MAX_SENDER_LENGTH,
    RestInput,
    bearer_token_matches,
    is_json,
    webhook_token,
)
from tests.served import serve_sanic_on_loopback

TOKEN = "test-only REST webhook token"
JSON = {"Content-Type": "application/json"}


@asynccontextmanager
async def serving(channel: RestInput, received: list[UserMessage]) -> AsyncIterator[str]:
    """Serves the channel as Rasa mounts it; yields the webhook URL. The stand-in for
    the agent records each message and echoes it."""

    async def echo(message: UserMessage) -> None:
        received.append(message)
        await message.output_channel.send_text_message(message.sender_id,
                                                        f"echo: {message.text}")

    app = Sanic(f"rest_test_{uuid.uuid4().hex[:12]}", configure_logging=False)
    app.blueprint(channel.blueprint(echo), url_prefix="/webhooks/rest")
    async with serve_sanic_on_loopback(app) as port:
        yield f"http://127.0.0.1:{port}/webhooks/rest/webhook"


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # Several Sanic apps start in one process only in test mode.
    monkeypatch.setattr(Sanic, "test_mode", True)


Post = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture
async def webhook() -> AsyncIterator[Callable[..., Any]]:
    """Factory: ``start(token=None)`` serves a channel; returns ``(post, received)``."""
    servers: list[Any] = []
    async with aiohttp.ClientSession() as session:

        async def start(token: str | None = None) -> tuple[Post, list[UserMessage]]:
            received: list[UserMessage] = []
            server = serving(RestInput(token=token), received)
            servers.append(server)
            url = await server.__aenter__()

            async def post(body: Any = None, headers: dict[str, str] | None = None,
                           data: Any = None, **params: str) -> tuple[int, Any]:
                if data is None:
                    data = json.dumps(body).encode()
                async with session.post(url, data=data, params=params,
                                        headers=JSON if headers is None else headers) as reply:
                    text = await reply.text()
                    try:
                        return reply.status, json.loads(text)
                    except ValueError:
                        return reply.status, text

            return post, received

        yield start
        for server in reversed(servers):
            await server.__aexit__(None, None, None)


MESSAGE = {"sender": "alice", "message": "where is my order 12345?"}


async def test_a_json_message_reaches_rasa_as_rest_sender(webhook: Any) -> None:
    post, received = await webhook()

    status, answer = await post(MESSAGE)

    assert status == 200
    assert answer == [{"recipient_id": "rest:alice", "text": "echo: where is my order 12345?"}]
    [message] = received
    assert (message.sender_id, message.input_channel) == ("rest:alice", "rest")


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "Application/JSON", " application/json "])
async def test_json_with_parameters_or_case_is_json(webhook: Any, content_type: str) -> None:
    post, received = await webhook()

    assert (await post(MESSAGE, headers={"Content-Type": content_type}))[0] == 200
    assert len(received) == 1


@pytest.mark.parametrize(("content_type", "data"), [
    ("text/plain", json.dumps(MESSAGE)),  # fetch(..., {mode: "no-cors", body: "..."})
    ("text/plain;charset=UTF-8", json.dumps(MESSAGE)),
    ("application/x-www-form-urlencoded", json.dumps(MESSAGE)),  # <form enctype=...>
    ("application/x-www-form-urlencoded", "sender=alice&message=hi"),
    ("multipart/form-data; boundary=x",
     '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n'),
    (None, json.dumps(MESSAGE)),
    ("application/json-patch+json", json.dumps(MESSAGE)),
    ("text/json", json.dumps(MESSAGE)),
], ids=["text-plain", "text-plain-charset", "form-with-json", "form", "multipart",
        "no-content-type", "json-patch", "text-json"])
async def test_a_cross_site_form_post_is_refused(webhook: Any, content_type: str | None,
                                                 data: str) -> None:
    post, received = await webhook()
    headers = {} if content_type is None else {"Content-Type": content_type}

    status, answer = await post(data=data.encode(), headers=headers)

    assert status == 415
    assert "application/json" in answer["error"]
    assert received == []


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
    f"Basic {TOKEN}", TOKEN, f"Token {TOKEN}",
], ids=["missing", "empty", "scheme-only", "scheme-space", "longer", "shorter", "basic",
        "no-scheme", "other-scheme"])
async def test_without_the_bearer_token_a_configured_webhook_answers_401(
        webhook: Any, authorization: str | None) -> None:
    post, received = await webhook(token=TOKEN)
    headers = dict(JSON)
    if authorization is not None:
        headers["Authorization"] = authorization

    status, answer = await post(MESSAGE, headers=headers)

    assert status == 401
    assert set(answer) == {"error"} and TOKEN not in json.dumps(answer)
    assert received == []


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"bearer {TOKEN}",
                                           f"BEARER  {TOKEN} "])
async def test_the_bearer_token_lets_the_message_through(webhook: Any,
                                                         authorization: str) -> None:
    post, received = await webhook(token=TOKEN)

    status, _ = await post(MESSAGE, headers=JSON | {"Authorization": authorization})

    assert status == 200 and len(received) == 1


async def test_a_token_does_not_excuse_a_form_post(webhook: Any) -> None:
    post, received = await webhook(token=TOKEN)

    status, _ = await post(data=json.dumps(MESSAGE).encode(),
                           headers={"Content-Type": "text/plain",
                                    "Authorization": f"Bearer {TOKEN}"})

    assert status == 415 and received == []


@pytest.mark.parametrize("body", [
    {"message": "hi"}, {"sender": None, "message": "hi"}, {"sender": "", "message": "hi"},
    {"sender": {"id": 1}, "message": "hi"}, {"sender": 7, "message": "hi"},
    {"sender": "x" * (MAX_SENDER_LENGTH + 1), "message": "hi"}, ["sender", "message"],
], ids=["missing", "null", "empty", "object", "number", "too-long", "list"])
async def test_a_body_without_a_usable_sender_is_a_400(webhook: Any, body: Any) -> None:
    post, received = await webhook()

    status, _ = await post(body)

    assert status == 400 and received == []


@pytest.mark.parametrize("text", [12345, {"text": "hi"}, ["hi"], True],
                         ids=["number", "object", "list", "boolean"])
async def test_a_message_that_is_not_text_is_a_400(webhook: Any, text: Any) -> None:
    post, received = await webhook()

    status, _ = await post({"sender": "bad-type", "message": text})

    assert status == 400 and received == []


async def test_a_caller_cannot_reach_another_channels_conversation(webhook: Any) -> None:
    post, received = await webhook()

    for sender in ("webchat:0123456789abcdef0123456789abcdef", "dingtalk:manager4711",
                   "rest:alice"):
        assert (await post({"sender": sender, "message": "hi"}))[0] == 200

    assert [m.sender_id for m in received] == [
        "rest:webchat:0123456789abcdef0123456789abcdef", "rest:dingtalk:manager4711",
        "rest:rest:alice"]


async def test_a_caller_cannot_claim_an_identity_or_another_channel(webhook: Any) -> None:
    post, received = await webhook()

    await post(MESSAGE | {"input_channel": "webchat", "metadata": {
        "verified_identity": {"channel": "webchat", "customer_id": "C-001"}, "page": "/"}})
    await post(MESSAGE | {"metadata": ["not", "an", "object"]})

    assert [m.input_channel for m in received] == ["rest", "rest"]
    assert [m.metadata for m in received] == [{"page": "/"}, {}]


async def test_streaming_still_works(webhook: Any) -> None:
    post, received = await webhook()

    status, answer = await post(MESSAGE, stream="true")

    assert status == 200  # one JSON object per line; here there is one line
    assert answer["text"] == "echo: where is my order 12345?"
    assert received[0].sender_id == "rest:alice"


async def test_a_failed_turn_is_a_503_without_its_partial_answers() -> None:
    # As when the tracker store is down as Rasa saves the turn: the replies were
    # collected, but no tracker holds them, so the caller must send the message again.
    async def answer_then_fail(message: UserMessage) -> None:
        await message.output_channel.send_text_message(message.sender_id, "partial")
        raise RuntimeError("the tracker store is down")

    app = Sanic(f"rest_test_{uuid.uuid4().hex[:12]}", configure_logging=False)
    app.blueprint(RestInput().blueprint(answer_then_fail), url_prefix="/webhooks/rest")
    async with serve_sanic_on_loopback(app) as port, aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                                json=MESSAGE) as reply:
            status, retry_after, body = reply.status, reply.headers.get("Retry-After"), \
                await reply.json()

    assert (status, retry_after) == (503, "1")
    assert "partial" not in json.dumps(body) and "send it again" in body["error"]


# -- helpers and configuration ------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    ("application/json", True), ("application/json;charset=utf-8", True),
    ("APPLICATION/JSON", True), ("text/plain", False), ("application/jsonp", False),
    ("", False), (None, False),
])
def test_is_json(header: str | None, expected: bool) -> None:
    assert is_json(header) is expected


def test_bearer_token_matches() -> None:
    assert bearer_token_matches(f"Bearer {TOKEN}", TOKEN)
    assert not bearer_token_matches(f"Bearer {TOKEN}", TOKEN + "x")
    assert not bearer_token_matches(None, TOKEN)
    assert not bearer_token_matches("Bearer 令牌", TOKEN)  # non-ASCII: no exception


def test_webhook_token_from_the_option_or_the_environment() -> None:
    assert webhook_token({}, {}) is None
    assert webhook_token({}, {"REST_WEBHOOK_TOKEN": " "}) is None
    assert webhook_token({}, {"REST_WEBHOOK_TOKEN": TOKEN}) == TOKEN
    assert webhook_token({"token": "from-credentials"},
                         {"REST_WEBHOOK_TOKEN": TOKEN}) == "from-credentials"
    for bad in ("", " ", 123, ["x"]):
        with pytest.raises(InvalidConfigException, match="REST_WEBHOOK_TOKEN"):
            webhook_token({"token": bad}, {})


def test_from_credentials_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REST_WEBHOOK_TOKEN", TOKEN)
    assert RestInput.from_credentials(None).token == TOKEN
    monkeypatch.delenv("REST_WEBHOOK_TOKEN")
    channel = RestInput.from_credentials({})
    assert isinstance(channel, RestInput) and channel.token is None
    assert channel.name() == "rest" and channel.url_prefix() == "rest"
