"""Factories for console tests: a shop database, agents, a fake Rasa, a test client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from actions.backend import NewTicket
from actions.db import SqlBackend
from console.app import make_app
from console.rasa_api import RasaApiError
from console.settings import ConsoleSettings
from console.store import Agent, ConsoleStore

PASSWORD = "correct horse battery"


class FakeRasa:
    """``RasaApi`` that records the calls and answers from a tracker it keeps."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.pushed: list[tuple[str, str, str]] = []
        self.triggered: list[tuple[str, str, dict[str, str]]] = []
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise RasaApiError("Rasa could not be reached: ClientConnectorError")

    async def tracker(self, sender_id: str) -> dict[str, Any]:
        self._check()
        return {"sender_id": sender_id, "events": self.events.get(sender_id, [])}

    async def push(self, sender_id: str, text: str, agent_name: str) -> None:
        self._check()
        self.pushed.append((sender_id, text, agent_name))

    async def trigger(self, sender_id: str, intent: str,
                      entities: dict[str, str]) -> dict[str, Any]:
        self._check()
        self.triggered.append((sender_id, intent, entities))
        return {}


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[SqlBackend]:
    backend = SqlBackend(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}", busy_timeout_s=2.0)
    await backend.start()
    yield backend
    await backend.close()


@pytest.fixture
async def store(shop: SqlBackend) -> ConsoleStore:
    return ConsoleStore(await shop.engine())


@pytest.fixture
def make_agent(store: ConsoleStore) -> Callable[..., Any]:
    """Factory: ``await make_agent("dana")`` creates an agent with :data:`PASSWORD`."""
    async def make(username: str = "dana", name: str = "Dana") -> Agent:
        return await store.create_agent(username, name, PASSWORD)
    return make


@pytest.fixture
def make_ticket(shop: SqlBackend) -> Callable[..., Any]:
    """Factory: ``await make_ticket(sender_id="webchat:s1", reason=..., priority=...)``."""
    async def make(sender_id: str = "webchat:abc", reason: str = "strongly_negative",
                   priority: str = "high", negative: tuple[float, ...] = (0.2, 0.9)) -> str:
        ticket = await shop.create_ticket(NewTicket(
            sender_id=sender_id, reason=reason, priority=priority, intent="complaint",
            transcript=({"role": "customer", "text": "it broke", "timestamp": "1"},),
            sentiment_history=tuple({"label": "negative", "negative": n, "text": "x"}
                                    for n in negative)))
        return ticket.reference
    return make


@pytest.fixture
def rasa() -> FakeRasa:
    return FakeRasa()


@pytest.fixture
def settings(tmp_path: Path) -> ConsoleSettings:
    return ConsoleSettings(shop_database_url=f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}",
                           tracker_database_url="", rasa_jwt_secret="s" * 40)


@pytest.fixture
async def make_client(settings: ConsoleSettings, store: ConsoleStore,
                      rasa: FakeRasa) -> AsyncIterator[Callable[..., Any]]:
    """Factory: a test client of the console app (each its own cookie jar)."""
    clients: list[TestClient] = []
    server = TestServer(make_app(settings, store, rasa))
    await server.start_server()

    async def make() -> TestClient:
        # Like a browser on localhost, the jar sends Secure cookies over plain HTTP to
        # the test server only (aiohttp's default would drop them on http://).
        jar = CookieJar(unsafe=True, treat_as_secure_origin=[str(server.make_url("/"))])
        client = TestClient(server, cookie_jar=jar)
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
    await server.close()


async def sign_in(client: TestClient, username: str = "dana",
                  password: str = PASSWORD) -> str:
    """Signs in through the form; returns the session's CSRF token."""
    page = await client.get("/login")
    token = _hidden(await page.text())
    answer = await client.post("/login", data={"username": username, "password": password,
                                               "csrf_token": token}, allow_redirects=False)
    assert answer.status == 303, await answer.text()
    queue = await client.get("/")
    return _meta_csrf(await queue.text())


def _hidden(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def _meta_csrf(html: str) -> str:
    marker = '<meta name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]
