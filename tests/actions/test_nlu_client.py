"""The /model/parse client against a local aiohttp server (loopback only)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import jwt
import pytest
from aiohttp import web

from actions.exceptions import ParseError
from actions.nlu_client import RasaParseClient, parsed_from_json
from tests.served import serve_on_loopback

SECRET = "x" * 40
GOOD = {"text": "x", "intent": {"name": "return_item", "confidence": 0.91},
        "sentiment": {"label": "negative", "confidence": 0.8, "scores": {"negative": 0.8}}}


@pytest.fixture
async def fake_rasa() -> AsyncIterator[Callable]:
    """Factory: a server whose /model/parse answers with the given (status, body) in turn."""
    runners: list[web.AppRunner] = []

    async def start(*answers: tuple[int, object] | float) -> tuple[str, list]:
        seen: list = []

        async def parse(request: web.Request) -> web.Response:
            seen.append((await request.json(), dict(request.query),
                         request.headers.get("Authorization")))
            answer = answers[min(len(seen), len(answers)) - 1]
            if isinstance(answer, float):  # a slow server
                await asyncio.sleep(answer)
                return web.json_response(GOOD)
            status, body = answer
            return web.json_response(body, status=status)

        app = web.Application()
        app.router.add_post("/model/parse", parse)
        runner, port = await serve_on_loopback(app)
        runners.append(runner)
        return f"http://127.0.0.1:{port}", seen

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_parse_sends_the_text_and_a_short_lived_bearer_token(fake_rasa) -> None:
    url, seen = await fake_rasa((200, GOOD))

    parsed = await RasaParseClient(url, jwt_secret=SECRET).parse("my parcel is broken")

    assert (parsed.intent, parsed.confidence, parsed.sentiment["label"]) == (
        "return_item", 0.91, "negative")
    [(body, query, authorization)] = seen
    assert (body, query) == ({"text": "my parcel is broken"}, {})  # nothing in the URL
    scheme, _, token = authorization.partition(" ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert scheme == "Bearer" and SECRET not in authorization
    assert claims["user"]["role"] == "admin" and 0 < claims["exp"] - claims["iat"] <= 60


async def test_without_a_secret_no_authorization_is_sent(fake_rasa) -> None:
    url, seen = await fake_rasa((200, GOOD))

    await RasaParseClient(url).parse("x")

    assert seen[0][2] is None


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="RASA_JWT_SECRET must be at least 32 bytes"):
        RasaParseClient("http://127.0.0.1:1", jwt_secret="short")


async def test_one_retry_after_a_server_error(fake_rasa) -> None:
    url, seen = await fake_rasa((500, {"error": "boom"}), (200, GOOD))

    assert (await RasaParseClient(url).parse("x")).intent == "return_item"
    assert len(seen) == 2


@pytest.mark.parametrize("answers", [[(500, {})], [(401, {})], [(200, {"intent": None})], [2.0]],
                         ids=["500", "401", "wrong shape", "timeout"])
async def test_failures_raise_parse_error_after_the_retry(fake_rasa, answers) -> None:
    url, seen = await fake_rasa(*answers)

    with pytest.raises(ParseError):
        await RasaParseClient(url, timeout_s=0.3).parse("x")
    assert len(seen) == 2


async def test_unreachable_server_raises_parse_error() -> None:
    with pytest.raises(ParseError):
        await RasaParseClient("http://127.0.0.1:9", timeout_s=0.5).parse("x")


@pytest.mark.parametrize("body", [None, [], {"intent": {"confidence": 1}}, "text"])
def test_wrong_shapes(body) -> None:
    with pytest.raises(ParseError):
        parsed_from_json(body)
