"""The /model/parse client against a local aiohttp server (loopback only)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from actions.exceptions import ParseError
from actions.nlu_client import RasaParseClient, parsed_from_json
from tests.served import serve_on_loopback

GOOD = {"text": "x", "intent": {"name": "return_item", "confidence": 0.91},
        "sentiment": {"label": "negative", "confidence": 0.8, "scores": {"negative": 0.8}}}


@pytest.fixture
async def fake_rasa() -> AsyncIterator[Callable]:
    """Factory: a server whose /model/parse answers with the given (status, body) in turn."""
    runners: list[web.AppRunner] = []

    async def start(*answers: tuple[int, object] | float) -> tuple[str, list]:
        seen: list = []

        async def parse(request: web.Request) -> web.Response:
            seen.append((await request.json(), dict(request.query)))
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


async def test_parse_sends_text_and_token(fake_rasa) -> None:
    url, seen = await fake_rasa((200, GOOD))

    parsed = await RasaParseClient(url, token="secret").parse("my parcel is broken")

    assert (parsed.intent, parsed.confidence, parsed.sentiment["label"]) == (
        "return_item", 0.91, "negative")
    assert seen == [({"text": "my parcel is broken"}, {"token": "secret"})]


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
