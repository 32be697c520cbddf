"""The DingTalk channel end to end: signed Chinese messages into the real served assistant.

The session's ``assistant_model`` (config.yml) is bilingual (``bilingual_model`` in
tests/conftest.py names it for the Chinese tests). The module starts its own pair of
servers on 127.0.0.1: the action server and ``python -m bot.serve
--enable-api`` with a credentials file that opens
``bot.dingtalk.DingTalkInput`` only, its AppSecret from ``${DINGTALK_APP_SECRET}``.
DingTalk is played by the tests: they sign requests as DingTalk does (the unit tests'
``headers``) and read what Rasa made of them through its HTTP API (Bearer tokens,
conversation ids ``dingtalk:<staff id>``).

Where the replies go. The channel only POSTs replies to ``https://oapi.dingtalk.com``
session webhooks: ``from_credentials`` has no option for other origins (the constructor's
``webhook_origins``, which the unit tests use, cannot be reached from a credentials file;
``api_base`` only moves the robot API). So a served channel cannot reply to a loopback
stand-in of the send API, and :func:`test_a_loopback_session_webhook_is_refused` shows that
it refuses one. The conversations therefore name an ``oapi.dingtalk.com`` session webhook
whose ``sessionWebhookExpiredTime`` has just passed: the channel accepts the message, Rasa
answers it, and the channel's output drops each reply as expired (a logged warning)
instead of sending it off this machine. The replies are read from the tracker's ``bot``
events, and the warnings show that they did reach the channel's output.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.bot.dingtalk.conftest import SECRET, FakeSendApi, headers, payload
from tests.served import (
    BIN,
    ENV,
    ROOT,
    api,
    api_secret,
    endpoints_file,
    free_port,
    start_action_server,
    stop,
    wait_until_up,
)

pytestmark = [pytest.mark.slow, pytest.mark.bilingual]

WINDOW_S = 300  # the served channel's timestamp_window_s
ANSWER_S = 90.0  # one turn of the real assistant on a slow, busy 2-core CPU
# A DingTalk session webhook that expired a moment ago: accepted, never sent to.
EXPIRED_WEBHOOK = "https://oapi.dingtalk.com/robot/sendBySession?session=served-e2e-expired"
DROPPED = "DingTalk: the session webhook expired; text reply dropped"
HAN = re.compile(r"[\u4e00-\u9fff]")

Signed = tuple[dict[str, str], bytes]


def now_ms() -> int:
    """The current time in milliseconds since the epoch, as DingTalk's headers carry it."""
    return round(time.time() * 1000)


def start_rasa_with_credentials(model: Path, port: int, endpoints: Path, credentials: Path,
                                jwt_secret: str, log: Path) -> subprocess.Popen:
    """``tests.served.start_rasa`` with another credentials file and the AppSecret's
    variable in the environment."""
    with log.open("a") as out:
        return subprocess.Popen(
            [str(BIN / "python"), "-m", "bot.serve", "--enable-api",
             "--interface", "127.0.0.1", "--port", str(port), "--model", str(model),
             "--endpoints", str(endpoints), "--credentials", str(credentials)],
            cwd=ROOT, env=ENV | {"RASA_JWT_SECRET": jwt_secret, "DINGTALK_APP_SECRET": SECRET},
            stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def dingtalk_served(bilingual_model: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The assistant served with the DingTalk channel, and its action server.

    Yields:
        ``url`` (Rasa), ``webhook`` (the channel's message URL), ``jwt_secret`` (for
        :func:`tests.served.api`) and ``log`` (Rasa's output).
    """
    work = tmp_path_factory.mktemp("dingtalk-served")
    rasa_port, actions_port = free_port(), free_port()
    jwt_secret = api_secret()
    actions_url = f"http://127.0.0.1:{actions_port}/webhook"
    endpoints = endpoints_file(work / "endpoints.yml", actions_url, work / "tracker.db")
    credentials = work / "credentials.yml"
    credentials.write_text("bot.dingtalk.DingTalkInput:\n"
                           "  app_secret: ${DINGTALK_APP_SECRET}\n"
                           f"  timestamp_window_s: {WINDOW_S}\n"
                           "  send_timeout_s: 5\n")
    log = work / "rasa.log"
    processes = [
        start_action_server(actions_port, work / "shop.db", rasa_port, jwt_secret,
                            work / "actions.log"),
        start_rasa_with_credentials(bilingual_model, rasa_port, endpoints, credentials,
                                    jwt_secret, log),
    ]
    url = f"http://127.0.0.1:{rasa_port}"
    try:
        wait_until_up(f"http://127.0.0.1:{actions_port}/health", processes)
        wait_until_up(f"{url}/webhooks/dingtalk/", processes)  # the channel is mounted
        yield {"url": url, "webhook": f"{url}/webhooks/dingtalk/webhook",
               "jwt_secret": jwt_secret, "log": log}
    finally:
        stop(*processes)


@pytest.fixture
def signed() -> Callable[..., Signed]:
    """Factory: a single-chat text message from ``staff``, signed now with the AppSecret.

    Keyword arguments change the message's fields (``conftest.payload``); the session
    webhook is :data:`EXPIRED_WEBHOOK` unless given.
    """

    def make(text: str, staff: str, *, secret: str = SECRET, timestamp_ms: int | None = None,
             **changes: Any) -> Signed:
        stamp = now_ms() if timestamp_ms is None else timestamp_ms
        message = payload(**{
            "text": {"content": text}, "msgId": f"msg{uuid.uuid4().hex}",
            "createAt": stamp - 300, "senderStaffId": staff, "senderNick": "王芳",
            "conversationId": f"cid-{staff}", "sessionWebhook": EXPIRED_WEBHOOK,
            "sessionWebhookExpiredTime": now_ms() - 1_000} | changes)
        return headers(stamp, secret), json.dumps(message, ensure_ascii=False).encode()

    return make


class DingTalkSide:
    """DingTalk's side of the served channel, and a reader of Rasa's trackers."""

    def __init__(self, served: dict[str, Any], session: aiohttp.ClientSession) -> None:
        self.served = served
        self.session = session

    async def post(self, message: Signed) -> tuple[int, Any]:
        """POSTs a message to the channel's webhook; returns the status and the JSON."""
        request_headers, data = message
        async with self.session.post(self.served["webhook"], data=data,
                                     headers=request_headers) as reply:
            return reply.status, await reply.json()

    async def events(self, staff: str) -> list[dict[str, Any]]:
        """The events of the conversation ``dingtalk:<staff>`` (Rasa's HTTP API)."""
        url = f"{self.served['url']}/conversations/dingtalk:{staff}/tracker"
        async with self.session.get(url, headers=api(self.served)) as reply:
            assert reply.status == 200, await reply.text()
            return (await reply.json())["events"]

    async def user_events(self, staff: str) -> list[dict[str, Any]]:
        """The conversation's user messages."""
        return [event for event in await self.events(staff) if event["event"] == "user"]

    async def replies(self, staff: str, msg_id: str) -> list[str]:
        """Waits until the assistant finished its turn after message ``msg_id``.

        Returns:
            The texts of its ``bot`` events in that turn.
        """
        deadline = time.monotonic() + ANSWER_S
        while time.monotonic() < deadline:
            events = await self.events(staff)
            ids = [event.get("message_id") for event in events]
            if msg_id in ids:
                turn = events[ids.index(msg_id) + 1:]
                texts = [event.get("text") or "" for event in turn if event["event"] == "bot"]
                if texts and turn[-1].get("name") == "action_listen":
                    return texts
            await asyncio.sleep(1)
        raise AssertionError(f"no answer to {msg_id} within {ANSWER_S} s; Rasa's log:\n"
                             + "\n".join(self.served["log"].read_text().splitlines()[-30:]))

    def dropped_replies(self) -> int:
        """How many replies the channel's output dropped as expired (Rasa's log)."""
        return self.served["log"].read_text().count(DROPPED)


@pytest.fixture
async def dingtalk(dingtalk_served: dict[str, Any]) -> AsyncIterator[DingTalkSide]:
    """DingTalk's side of the module's served channel."""
    async with aiohttp.ClientSession() as session:
        yield DingTalkSide(dingtalk_served, session)


def chinese(texts: list[str]) -> str:
    """The replies as one text, checked to be Chinese (Han characters)."""
    joined = "\n".join(texts)
    assert HAN.search(joined), f"the assistant answered in English: {texts!r}"
    return joined


def understood(user: dict[str, Any]) -> str:
    """What Rasa's NLU made of a user event, for failure messages: the intent and, for a
    fallback, why (``unknown_input``) and what the classifier had predicted."""
    parsed = user.get("parse_data") or {}
    unknown = parsed.get("unknown_input") or {}
    because = (f" (reason {unknown.get('reason')!r}; predicted "
               f"{unknown.get('predicted_intent')} {unknown.get('confidence', 0):.3f})"
               if unknown.get("reason") else "")
    return f"NLU: {user.get('text')!r} -> {(parsed.get('intent') or {}).get('name')}{because}"


async def test_a_signed_chinese_conversation_gets_chinese_answers(
        dingtalk: DingTalkSide, signed: Callable[..., Signed]) -> None:
    staff = "staff-e2e-wang"
    assert await dingtalk.user_events(staff) == []  # also stores the session's start
    dropped = dingtalk.dropped_replies()

    question = signed("我的订单48213到哪了？", staff)
    assert await dingtalk.post(question) == (200, {"msgtype": "empty"})
    msg_id = json.loads(question[1])["msgId"]
    asked = chinese(await dingtalk.replies(staff, msg_id))
    [user] = await dingtalk.user_events(staff)

    # utter_ask_order_proof (zh): the e-mail address on order 48213, or its postcode.
    assert "48213" in asked and "邮箱" in asked, f"{asked!r}; {understood(user)}"
    assert (user["text"], user["input_channel"]) == ("我的订单48213到哪了？", "dingtalk")
    assert user["metadata"]["verified_identity"] == {"channel": "dingtalk",
                                                     "external_id": staff}
    assert "sessionWebhook" not in json.dumps(user["metadata"])

    proof = signed("我的邮箱是sam@example.com", staff)
    assert await dingtalk.post(proof) == (200, {"msgtype": "empty"})
    answered = chinese(await dingtalk.replies(staff, json.loads(proof[1])["msgId"]))
    users = await dingtalk.user_events(staff)

    # 48213 (Sam's) is processing: "正在备货，很快就会发货" or "还没有发货".
    assert "48213" in answered and "发货" in answered, f"{answered!r}; {understood(users[-1])}"
    assert len(users) == 2
    # Every reply reached the channel's output, which kept it on this machine.
    assert dingtalk.dropped_replies() - dropped >= 2


async def test_a_replayed_request_is_refused(dingtalk: DingTalkSide,
                                             signed: Callable[..., Signed]) -> None:
    staff = "staff-e2e-replay"
    message = signed("你好啊，客服", staff)
    msg_id = json.loads(message[1])["msgId"]
    assert await dingtalk.post(message) == (200, {"msgtype": "empty"})
    chinese(await dingtalk.replies(staff, msg_id))

    # The same headers and body again (a captured request), and the same msgId freshly
    # signed with another text.
    again = await dingtalk.post(message)
    other_text = signed("帮我取消订单48213", staff, msgId=msg_id)
    again_reworded = await dingtalk.post(other_text)

    refused = (401, {"error": "message already received"})
    assert (again, again_reworded) == (refused, refused)
    await asyncio.sleep(2)  # a wrongly accepted message would be handled by now
    assert [event["message_id"] for event in await dingtalk.user_events(staff)] == [msg_id]


@pytest.mark.parametrize(
    ("secret", "offset_s", "error"),
    [("a-forged-app-secret", 0, "wrong 'sign'"),
     (SECRET, -(WINDOW_S + 60), "'timestamp' is outside the accepted window"),
     (SECRET, WINDOW_S + 60, "'timestamp' is outside the accepted window")],
    ids=["forged-sign", "stale", "future"],
)
async def test_a_request_that_dingtalk_did_not_sign_now_is_refused(
        dingtalk: DingTalkSide, signed: Callable[..., Signed], secret: str, offset_s: int,
        error: str) -> None:
    staff = f"staff-e2e-refused-{uuid.uuid4().hex[:8]}"
    message = signed("我要退货", staff, secret=secret, timestamp_ms=now_ms() + offset_s * 1000)

    status = await dingtalk.post(message)

    assert status == (401, {"error": error})
    await asyncio.sleep(2)  # a wrongly accepted message would be handled by now
    assert await dingtalk.user_events(staff) == []


async def test_a_loopback_session_webhook_is_refused(
        dingtalk: DingTalkSide, signed: Callable[..., Signed], send_api: FakeSendApi) -> None:
    """A served channel replies to DingTalk's origin only; no credentials option allows
    a loopback stand-in of the send API (the unit tests construct the channel with
    ``webhook_origins`` instead)."""
    staff = "staff-e2e-loopback"
    message = signed("我要退货", staff, sessionWebhook=send_api.url,
                     sessionWebhookExpiredTime=now_ms() + 3_600_000)

    status = await dingtalk.post(message)

    assert status == (400, {"error": "'sessionWebhook' is not a DingTalk URL"})
    await asyncio.sleep(2)
    assert send_api.received == []
    assert await dingtalk.user_events(staff) == []

