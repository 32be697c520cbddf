"""The bridge's signed POST to Rasa and how it reads the answers (no SDK needed).

:mod:`bot.dingtalk_stream.forward` runs in ``.venv-stream``; it needs only aiohttp, so
these tests run it here against a stand-in of Rasa's channel on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from bot.dingtalk_stream.forward import Outcome, RasaAnswer, forward_to_rasa
from bot.dingtalk_stream.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.bot.dingtalk_stream.conftest import BRIDGE_SECRET
from tests.served import free_port, serve_on_loopback

BODY = '{"msgId": "m1", "text": {"content": "你好"}}'.encode()
REPLY = {"msgtype": "text", "text": {"content": "hi"}}


class FakeRasa:
    """Answers each POST with ``status`` and ``body``; checks the signature it got."""

    def __init__(self) -> None:
        self.status = 200
        self.body: str = '{"messages": []}'
        self.delay_s = 0.0
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        await asyncio.sleep(self.delay_s)
        return web.Response(status=self.status, text=self.body,
                            content_type="application/json")


@pytest.fixture
async def rasa() -> AsyncIterator[FakeRasa]:
    fake = FakeRasa()
    app = web.Application()
    app.router.add_post("/webhooks/dingtalk_stream/message", fake.handle)
    runner, port = await serve_on_loopback(app)
    fake.url = f"http://127.0.0.1:{port}/webhooks/dingtalk_stream/message"
    yield fake
    await runner.cleanup()


async def test_the_message_goes_out_signed_and_the_replies_come_back(rasa: FakeRasa) -> None:
    rasa.body = '{"messages": [{"msgtype": "text", "text": {"content": "hi"}}]}'

    answer = await forward_to_rasa(rasa.url, BRIDGE_SECRET, BODY, timeout_s=5)

    assert answer == RasaAnswer(Outcome.REPLIES, [REPLY])
    [(headers, body)] = rasa.requests
    assert body == BODY
    verify(headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body, BRIDGE_SECRET)


@pytest.mark.parametrize(("status", "body", "outcome", "detail"), [
    (409, '{"error": "message already received"}', Outcome.DUPLICATE, "already received"),
    (401, '{"error": "wrong signature"}', Outcome.REFUSED, "wrong signature"),
    (500, '{"error": "the assistant failed"}', Outcome.FAILED, "HTTP 500: the assistant failed"),
    (502, "<html>bad gateway</html>", Outcome.FAILED, "HTTP 502: <html>bad gateway</html>"),
    (200, "[]", Outcome.FAILED, "without a 'messages' list"),
    (200, '{"messages": "hi"}', Outcome.FAILED, "without a 'messages' list"),
    (200, '{"messages": ["hi"]}', Outcome.FAILED, "without a 'messages' list"),
    (200, "not json", Outcome.FAILED, "without a 'messages' list"),
], ids=["duplicate", "refused", "error", "proxy", "list", "string", "strings", "not-json"])
async def test_every_other_answer_is_sorted_and_explained(
        rasa: FakeRasa, status: int, body: str, outcome: Outcome, detail: str) -> None:
    rasa.status, rasa.body = status, body

    answer = await forward_to_rasa(rasa.url, BRIDGE_SECRET, BODY, timeout_s=5)

    assert (answer.outcome, answer.messages) == (outcome, [])
    assert detail in answer.detail


@pytest.mark.parametrize(("trouble", "detail"), [
    (lambda rasa: setattr(rasa, "delay_s", 3.0), "no answer within 0.5 s"),
    (lambda rasa: setattr(rasa, "url", f"http://127.0.0.1:{free_port()}/message"),
     "cannot reach Rasa: ClientConnectorError"),
], ids=["slow", "down"])
async def test_a_slow_or_down_rasa_is_a_failure_not_an_exception(
        rasa: FakeRasa, trouble: Callable[[FakeRasa], Any], detail: str) -> None:
    trouble(rasa)

    answer = await forward_to_rasa(rasa.url, BRIDGE_SECRET, BODY, timeout_s=0.5)

    assert (answer.outcome, answer.detail) == (Outcome.FAILED, detail)
