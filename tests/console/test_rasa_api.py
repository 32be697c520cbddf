"""The console's calls to Rasa's HTTP API, against a loopback stand-in (console/rasa_api.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import jwt
import pytest
from aiohttp import web

from console.rasa_api import RasaApi, RasaApiError
from tests.served import serve_on_loopback

SECRET = "r" * 40


@pytest.fixture
async def fake_rasa() -> AsyncIterator[tuple[str, list]]:
    seen: list[dict] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        seen.append({"method": request.method, "path": request.raw_path.split("?")[0],
                     "query": dict(request.query), "body": body,
                     "authorization": request.headers.get("Authorization", "")})
        if "refuse" in request.raw_path:
            return web.json_response({}, status=403)
        return web.json_response({"events": []})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner, port = await serve_on_loopback(app)
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_a_push_is_a_bot_event_sent_to_the_latest_channel(fake_rasa) -> None:
    url, seen = fake_rasa

    await RasaApi(url, SECRET).push("webchat:abc", "Dana: hi", "Dana")

    [call] = seen
    assert (call["method"], call["path"]) == ("POST", "/conversations/webchat:abc/tracker/events")
    assert call["query"] == {"execute_side_effects": "true", "output_channel": "latest"}
    [event] = call["body"]
    assert (event["event"], event["text"], event["metadata"]) == ("bot", "Dana: hi",
                                                                  {"agent": "Dana"})
    claims = jwt.decode(call["authorization"].removeprefix("Bearer "), SECRET,
                        algorithms=["HS256"])
    assert claims["user"] == {"username": "agent-console", "role": "admin"}


async def test_a_trigger_and_a_tracker_read(fake_rasa) -> None:
    url, seen = fake_rasa
    api = RasaApi(url, SECRET)

    await api.trigger("rest:bob", "EXTERNAL_ticket_closed", {"ticket_reference": "T-1"})
    await api.tracker("rest:a b/c")

    assert seen[0]["path"] == "/conversations/rest:bob/trigger_intent"
    assert seen[0]["body"] == {"name": "EXTERNAL_ticket_closed",
                               "entities": {"ticket_reference": "T-1"}}
    # Characters a path cannot hold are encoded; ':' is not (Rasa does not decode it).
    assert seen[1]["path"] == "/conversations/rest:a%20b%2Fc/tracker"


async def test_refusals_and_a_dead_server_raise_rasa_api_error(fake_rasa) -> None:
    url, _ = fake_rasa

    with pytest.raises(RasaApiError, match="HTTP 403"):
        await RasaApi(url, SECRET).tracker("refuse")
    with pytest.raises(RasaApiError, match="could not be reached"):
        await RasaApi("http://127.0.0.1:1", SECRET, timeout_s=2).tracker("x")
