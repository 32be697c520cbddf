"""Across channels: conversation namespaces and the channels the credentials files open.

The channels are registered the way ``rasa run`` registers them
(``rasa.core.channels.channel.register``) on one app, in front of Rasa's trackers
kept by sender id, as Rasa's tracker stores keep them.
No model, no browser: a stand-in agent stores each user message and echoes it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import socketio
import yaml
from rasa.core.channels.channel import UserMessage, register
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic

from bot.rest import RestInput
from bot.webchat import DEFAULT_SOCKETIO_PATH, IdentityPolicy, WebChatInput
from tests.served import serve_sanic_on_loopback

ROOT = Path(__file__).resolve().parents[1]
SESSION_SECRET = "test-only webchat session secret, 32+ bytes long"
IDENTITY_SECRET = "test-only shop identity secret, 32+ bytes long"

# The channels whose user-message metadata a client cannot fill with
# ``verified_identity``: this project's (which drop it) and Rasa's Telegram and Slack
# connectors (whose metadata the connector builds from the platform's payload).
# Rasa's ``rest`` and ``socketio`` pass a client's metadata on as it came.
SAFE_CHANNELS = {"bot.rest.RestInput", "bot.webchat.WebChatInput",
                 "bot.dingtalk.DingTalkInput", "telegram", "slack",
                 # builds the metadata from the DingTalk message, which only the
                 # bridge with the shared secret can send (tests/bot/dingtalk_stream/)
                 "bot.dingtalk_stream.channel.DingTalkStreamInput",
                 # builds the metadata from WeChat's signed (safe mode) XML only
                 "bot.wechat.WeChatInput"}


class Agent:
    """Stands in for Rasa's agent: keeps each message in its sender's tracker, echoes."""

    def __init__(self) -> None:
        self.trackers: dict[str, DialogueStateTracker] = {}

    async def handle_message(self, message: UserMessage) -> None:
        tracker = self.trackers.setdefault(message.sender_id,
                                           DialogueStateTracker(message.sender_id, slots=[]))
        tracker.update(UserUttered(message.text, metadata=message.metadata))
        await message.output_channel.send_text_message(message.sender_id,
                                                       f"echo: {message.text}")

    def user_events(self, sender_id: str) -> list[UserUttered]:
        tracker = self.trackers.get(sender_id)
        events = tracker.events if tracker is not None else []
        return [event for event in events if isinstance(event, UserUttered)]

    async def texts(self, sender_id: str) -> list[str]:
        return [event.text for event in self.user_events(sender_id)]

    async def identities(self, sender_id: str) -> list[Any]:
        return [(event.metadata or {}).get("verified_identity")
                for event in self.user_events(sender_id)]


@pytest.fixture
async def served(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, Agent]]:
    """REST and the web chat on one app, as ``rasa run`` mounts them; yields its URL."""
    monkeypatch.setattr(Sanic, "test_mode", True)  # several apps in one process
    agent = Agent()
    app = Sanic(f"channels_test_{uuid.uuid4().hex[:12]}", configure_logging=False)
    app.ctx.agent = SimpleNamespace(handle_message=agent.handle_message)
    webchat = WebChatInput(session_secret=SESSION_SECRET,
                           identity=IdentityPolicy(secret=IDENTITY_SECRET))
    register([RestInput(), webchat], app, route="/webhooks/")
    webchat.sio.eio.ping_interval = webchat.sio.eio.ping_timeout = 0.5
    async with serve_sanic_on_loopback(app) as port:
        yield f"http://127.0.0.1:{port}", agent


async def rest(url: str, sender: str, text: str) -> list[dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/webhooks/rest/webhook",
                                json={"sender": sender, "message": text}) as reply:
            assert reply.status == 200
            return await reply.json()


async def webchat_session(url: str, **payload: Any) -> tuple[socketio.AsyncClient, str]:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, socketio_path=DEFAULT_SOCKETIO_PATH, transports=["polling"])
    confirmed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    sio.on("session_confirm", confirmed.set_result)
    await sio.emit("session_request", {"session_id": None} | payload)
    return sio, await asyncio.wait_for(confirmed, 10)


async def say(sio: socketio.AsyncClient, session_id: str, text: str) -> None:
    answered = asyncio.Event()
    sio.on("bot_uttered", lambda _: answered.set())
    await sio.emit("user_uttered", {"message": text, "session_id": session_id})
    await asyncio.wait_for(answered.wait(), 10)


async def test_a_rest_sender_named_like_a_webchat_session_reaches_another_tracker(
        served: tuple[str, Agent]) -> None:
    url, agent = served
    sio, session_id = await webchat_session(url)
    try:
        await say(sio, session_id, "my order is 12345")
        webchat_sender = f"webchat:{session_id.partition('.')[0]}"
        overheard: list[dict] = []
        sio.on("bot_uttered", overheard.append)

        # Every way a REST caller could name that conversation.
        for sender in (webchat_sender, session_id, session_id.partition(".")[0]):
            await rest(url, sender, "cancel it")
        await asyncio.sleep(0.5)

        assert await agent.texts(webchat_sender) == ["my order is 12345"]
        assert await agent.texts(f"rest:{webchat_sender}") == ["cancel it"]
        assert await agent.texts(f"rest:{session_id}") == ["cancel it"]
        assert overheard == []  # and the web chat never saw the REST replies
    finally:
        await sio.disconnect()


async def test_identities_stay_with_their_channel(served: tuple[str, Agent]) -> None:
    from bot.identity import make_customer_token

    url, agent = served
    sio, session_id = await webchat_session(
        url, customer_token=make_customer_token("C-001", IDENTITY_SECRET, 600))
    try:
        await say(sio, session_id, "hello")
    finally:
        await sio.disconnect()
    webchat_sender = f"webchat:{session_id.partition('.')[0]}"
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/webhooks/rest/webhook", json={
                "sender": webchat_sender, "message": "hi", "metadata": {
                    "verified_identity": {"channel": "webchat", "customer_id": "C-001"}}}):
            pass

    assert await agent.identities(webchat_sender) == [
        {"channel": "webchat", "customer_id": "C-001"}]
    assert await agent.identities(f"rest:{webchat_sender}") == [None]


@pytest.mark.parametrize("name", ["credentials.yml", "credentials.im.yml"])
def test_the_credentials_open_only_channels_that_keep_identities_honest(name: str) -> None:
    channels = yaml.safe_load((ROOT / name).read_text(encoding="utf-8")) or {}

    assert set(channels) <= SAFE_CHANNELS, set(channels) - SAFE_CHANNELS
    assert {"bot.rest.RestInput", "bot.webchat.WebChatInput"} <= set(channels)


@pytest.mark.parametrize("name", ["credentials.yml", "credentials.im.yml"])
def test_the_credentials_name_no_wildcard_origin(name: str) -> None:
    webchat = (yaml.safe_load((ROOT / name).read_text(encoding="utf-8")) or {}).get(
        "bot.webchat.WebChatInput") or {}

    assert "*" not in json.dumps(webchat.get("allowed_origins") or [])
