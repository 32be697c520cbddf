"""DingTalk Stream mode end to end: the SDK's WebSocket in, the real served assistant,
the replies out at the session webhook.

The test process plays DingTalk (``DingTalkStandIn``: the open-connection API, the
Stream WebSocket, the ``sessionWebhook``), starts the bridge with ``.venv-stream``, and
serves the assistant (``python -m bot.serve`` and the action server, tests/served.py)
with a credentials file that opens ``bot.dingtalk_stream.channel.DingTalkStreamInput``,
its secret from ``${DINGTALK_STREAM_BRIDGE_SECRET}``. Both languages run against the
session's ``assistant_model`` (config.yml, bilingual); the Chinese test has the marker
``bilingual`` (``make test-chinese``).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from actions.db import SqlBackend
from bot.dingtalk_stream.forward import FAILURE_REPLY
from tests.bot.dingtalk_stream.conftest import (
    BRIDGE_SECRET,
    Bridge,
    DingTalkStandIn,
    robot_message,
)
from tests.served import api, serve_assistant

pytestmark = pytest.mark.slow

ANSWER_S = 120.0  # one turn of the real assistant on a slow, busy 2-core CPU
HAN = re.compile(r"[\u4e00-\u9fff]")
CREDENTIALS = ("bot.dingtalk_stream.channel.DingTalkStreamInput:\n"
               "  bridge_secret: ${DINGTALK_STREAM_BRIDGE_SECRET}\n")


def serve_with_stream_channel(model: Path, tmp_path_factory: pytest.TempPathFactory
                              ) -> Iterator[dict[str, Any]]:
    """The assistant served with the Stream channel; ``message_url`` is what the bridge
    POSTs to."""
    credentials = tmp_path_factory.mktemp("stream-credentials") / "credentials.yml"
    credentials.write_text(CREDENTIALS)
    for served in serve_assistant(model, tmp_path_factory, credentials=credentials,
                                  env={"DINGTALK_STREAM_BRIDGE_SECRET": BRIDGE_SECRET}):
        yield served | {"message_url": f"{served['url']}/webhooks/dingtalk_stream/message"}


@pytest.fixture(scope="module")
def stream_served(assistant_model: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[dict[str, Any]]:
    """The assistant (config.yml, English and Chinese) behind the Stream channel."""
    yield from serve_with_stream_channel(assistant_model, tmp_path_factory)


class Customer:
    """A DingTalk user writing to the robot over Stream mode, and Rasa's tracker of them."""

    def __init__(self, staff: str, dingtalk: DingTalkStandIn, bridge: Bridge,
                 served: dict[str, Any]) -> None:
        self.staff = staff
        self.dingtalk = dingtalk
        self.bridge = bridge
        self.served = served

    async def says(self, text: str) -> list[str]:
        """Sends ``text`` as a robot message; returns the replies' texts.

        The bridge sends the replies before it ACKs, so they are all in at the ACK.
        """
        before = len(self.dingtalk.replies)
        frame = await self.dingtalk.deliver(robot_message(
            text, senderStaffId=self.staff, senderNick="王芳", conversationId=f"cid-{self.staff}",
            sessionWebhook=self.dingtalk.session_webhook))
        try:
            ack = await self.dingtalk.ack(frame, ANSWER_S)
        except AssertionError:
            raise AssertionError("no ACK; the bridge's log:\n" + self.bridge.output()
                                 + "\nRasa's log:\n" + self.rasa_log()) from None
        assert ack["code"] == 200
        replies = self.dingtalk.replies[before:]
        assert all(reply["at"] == {"atUserIds": [self.staff]} for reply in replies)
        return [reply["text"]["content"] if reply["msgtype"] == "text"
                else reply["markdown"]["text"] for reply in replies]

    def rasa_log(self) -> str:
        return "\n".join((self.served["work"] / "rasa.log").read_text().splitlines()[-30:])

    async def user_events(self) -> list[dict[str, Any]]:
        """The user messages of ``dingtalk:<staff>`` (Rasa's HTTP API)."""
        url = f"{self.served['url']}/conversations/dingtalk:{self.staff}/tracker"
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers=api(self.served)) as reply:
                assert reply.status == 200, await reply.text()
                events = (await reply.json())["events"]
        return [event for event in events if event["event"] == "user"]


@pytest.fixture
async def customer(dingtalk: DingTalkStandIn, start_bridge: Callable[..., Bridge]
                   ) -> AsyncIterator[Callable[..., Any]]:
    """Factory: ``await customer(served, staff, **bridge_env)`` connects a bridge to the
    served channel and returns the user ``staff``."""
    bridges: dict[tuple[str, ...], Bridge] = {}

    async def make(served: dict[str, Any], staff: str, **env: str) -> Customer:
        key = (served["message_url"], *sorted(env.items()))
        if key not in bridges:
            bridges[key] = start_bridge(dingtalk.origin, served["message_url"],
                                        DINGTALK_STREAM_TIMEOUT_S=str(ANSWER_S), **env)
            try:
                await dingtalk.connected(timeout_s=60)
            except AssertionError:
                raise AssertionError("the bridge did not connect; its log:\n"
                                     + bridges[key].output()) from None
        return Customer(staff, dingtalk, bridges[key], served)

    yield make


async def link(served: dict[str, Any], staff: str, customer_id: str) -> None:
    """Links a DingTalk staff id to a shop customer (``channel_identities``)."""
    # The action server creates the shop's schema on first use: make sure it exists.
    backend = SqlBackend(f"sqlite+aiosqlite:///{served['shop']}")
    await backend.start()
    await backend.close()
    with sqlite3.connect(served["shop"]) as database:
        database.execute("INSERT INTO channel_identities (channel, external_id, customer_id) "
                         "VALUES ('dingtalk', ?, ?)", (staff, customer_id))


async def test_an_english_order_status_conversation_completes(
        stream_served: dict[str, Any], customer: Callable[..., Any]) -> None:
    sam = await customer(stream_served, "staff-stream-en")

    asked = "\n".join(await sam.says("where is my order 48213?"))
    answered = "\n".join(await sam.says("sam@example.com"))

    # An anonymous DingTalk user proves the order is theirs first (actions/ownership.py).
    assert "e-mail address on order 48213" in asked, asked
    assert "48213" in answered and re.search(r"being prepared|hasn't shipped", answered), \
        answered
    users = await sam.user_events()
    assert [(u["text"], u["input_channel"]) for u in users] == [
        ("where is my order 48213?", "dingtalk_stream"), ("sam@example.com", "dingtalk_stream")]
    assert users[0]["metadata"]["verified_identity"] == {"channel": "dingtalk",
                                                         "external_id": "staff-stream-en"}
    assert "sessionWebhook" not in str(users[0]["metadata"])


async def test_a_linked_staff_id_needs_no_proof(
        stream_served: dict[str, Any], customer: Callable[..., Any]) -> None:
    sam = await customer(stream_served, "staff-stream-linked")
    await link(stream_served, "staff-stream-linked", "C-002")  # Sam Patel, who owns 48213

    answered = "\n".join(await sam.says("where is my order 48213?"))

    assert "48213" in answered and "e-mail" not in answered, answered


async def test_a_bridge_with_the_wrong_secret_reaches_nothing(
        stream_served: dict[str, Any], customer: Callable[..., Any]) -> None:
    mallory = await customer(stream_served, "staff-stream-forged",
                             DINGTALK_STREAM_BRIDGE_SECRET="not the served secret, 32+ bytes")

    replies = await mallory.says("where is my order 48213?")

    assert replies == [FAILURE_REPLY]
    await asyncio.sleep(2)  # a wrongly accepted message would be handled by now
    assert await mallory.user_events() == []
    assert "wrong signature" in mallory.bridge.output()


@pytest.mark.bilingual
async def test_a_chinese_order_status_conversation_completes(
        stream_served: dict[str, Any], customer: Callable[..., Any]) -> None:
    wang = await customer(stream_served, "staff-stream-zh")

    asked = "\n".join(await wang.says("我的订单48213到哪了？"))
    answered = "\n".join(await wang.says("我的邮箱是sam@example.com"))

    # utter_ask_order_proof (zh), then 48213's status (processing): not shipped yet.
    assert HAN.search(asked) and "48213" in asked and "邮箱" in asked, asked
    assert HAN.search(answered) and "48213" in answered and "发货" in answered, answered
    users = await wang.user_events()
    assert [u["text"] for u in users] == ["我的订单48213到哪了？", "我的邮箱是sam@example.com"]
    assert users[0]["metadata"]["verified_identity"] == {"channel": "dingtalk",
                                                         "external_id": "staff-stream-zh"}
