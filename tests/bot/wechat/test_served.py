"""The WeChat channel end to end: encrypted WeChat POSTs into the real served assistant,
replies out through a loopback stand-in of WeChat's token and customer-service API.

The servers are this module's own (``tests.served.serve_assistant`` with a credentials
file that opens ``bot.wechat.WeChatInput`` only, its secrets from ``${WECHAT_...}``
variables and its ``api_base`` on the stand-in), on 127.0.0.1: the action server and
``python -m bot.serve --enable-api``. WeChat is played by the tests: each request is
signed and encrypted with wechatpy's ``WeChatCrypto`` (the unit tests' ``encrypted``),
stamped with the current time. What Rasa made of a message is read through its HTTP API
(conversation ids ``wechat:<openid>``); what the customer got is what reached the
stand-in's ``/cgi-bin/message/custom/send``.

Both languages run on the session's ``assistant_model`` (config.yml, bilingual); the
Chinese test has the marker ``bilingual`` (``make test-chinese``).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.wechat.message import ONLY_TEXT_REPLY
from tests.bot.wechat.conftest import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    OTHER_AES_KEY,
    TOKEN,
    FakeWeChatApi,
    encrypted,
    message_xml,
    start_fake_api,
    text_xml,
)
from tests.served import api, get, serve_assistant

pytestmark = pytest.mark.slow

ANSWER_S = 90.0  # one turn of the real assistant on a slow, busy 2-core CPU
HAN = re.compile(r"[\u4e00-\u9fff]")
CREDENTIALS = """bot.wechat.WeChatInput:
  app_id: ${WECHAT_APP_ID}
  app_secret: ${WECHAT_APP_SECRET}
  token: ${WECHAT_TOKEN}
  encoding_aes_key: ${WECHAT_ENCODING_AES_KEY}
  api_base: {api_base}
  send_timeout_s: 5
"""


def serve_wechat(model: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[dict[str, Any]]:
    """The assistant served with the WeChat channel, and the stand-in of WeChat's API.

    Yields:
        ``tests.served.serve_assistant``'s dict plus ``api`` (the :class:`FakeWeChatApi`)
        and ``webhook`` (the channel's server URL).
    """
    wechat_api, stop_api = start_fake_api()
    credentials = tmp_path_factory.mktemp("wechat-credentials") / "credentials.yml"
    credentials.write_text(CREDENTIALS.replace("{api_base}", wechat_api.origin))
    env = {"WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": APP_SECRET, "WECHAT_TOKEN": TOKEN,
           "WECHAT_ENCODING_AES_KEY": AES_KEY}
    try:
        for served in serve_assistant(model, tmp_path_factory, credentials=credentials,
                                      env=env):
            get(f"{served['url']}/webhooks/wechat/")  # the channel is mounted
            yield served | {"api": wechat_api,
                            "webhook": f"{served['url']}/webhooks/wechat/webhook"}
    finally:
        stop_api()


@pytest.fixture(scope="module")
def wechat_served(assistant_model: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The assistant (config.yml, English and Chinese) behind the WeChat channel."""
    yield from serve_wechat(assistant_model, tmp_path_factory)


class WeChatUser:
    """One WeChat user (an OpenID) writing to the served account, as WeChat delivers it."""

    def __init__(self, served: dict[str, Any], openid: str | None = None) -> None:
        self.served = served
        self.api: FakeWeChatApi = served["api"]
        self.openid = openid or f"o{uuid.uuid4().hex[:27]}"

    def post(self, query: dict[str, str], body: bytes) -> tuple[int, str]:
        """POSTs one request to the channel; returns the status and the body."""
        request = urllib.request.Request(f"{self.served['webhook']}?{urlencode(query)}",
                                         data=body, headers={"Content-Type": "text/xml"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def request(self, xml: str, **options: Any) -> tuple[dict[str, str], bytes]:
        """``xml`` signed and encrypted now, as WeChat would POST it."""
        return encrypted(xml, timestamp=int(time.time()), **options)

    def say(self, text: str) -> list[str]:
        """Sends a text message; returns what the customer got for it."""
        msg_id = str(uuid.uuid4().int % 10**16)
        before = len(self.api.texts(self.openid))
        answered = self.post(*self.request(text_xml(text, openid=self.openid,
                                                    msg_id=int(msg_id))))
        assert answered == (200, "success"), answered
        return self.replies(msg_id, before)

    def events(self) -> list[dict[str, Any]]:
        """The conversation's events (Rasa's HTTP API)."""
        url = f"{self.served['url']}/conversations/wechat:{self.openid}/tracker"
        return json.loads(get(url, headers=api(self.served)))["events"]

    def user_events(self) -> list[dict[str, Any]]:
        """The conversation's user messages."""
        return [event for event in self.events() if event["event"] == "user"]

    def replies(self, msg_id: str, before: int) -> list[str]:
        """Waits until the assistant finished its turn after ``msg_id`` and every reply of
        the turn reached the send API; returns the texts the customer got."""
        deadline = time.monotonic() + ANSWER_S
        while time.monotonic() < deadline:
            events = self.events()
            ids = [event.get("message_id") for event in events]
            if msg_id in ids:
                turn = events[ids.index(msg_id) + 1:]
                bot = [event for event in turn if event["event"] == "bot"]
                if bot and turn[-1].get("name") == "action_listen":
                    expected = before + len(bot)
                    while (len(self.api.texts(self.openid)) < expected
                           and time.monotonic() < deadline):
                        time.sleep(0.2)
                    return self.api.texts(self.openid)[before:]
            time.sleep(1)
        log = (self.served["work"] / "rasa.log").read_text().splitlines()[-30:]
        raise AssertionError(f"no answer to {msg_id} within {ANSWER_S} s; Rasa's log:\n"
                             + "\n".join(log))


def link(served: dict[str, Any], openid: str, customer_id: str) -> None:
    """Links ``openid`` to a shop customer in ``channel_identities`` (the shop's own
    backend creates the database first if the action server has not yet)."""
    from actions.db import SqlBackend

    async def insert() -> None:
        backend = SqlBackend(f"sqlite+aiosqlite:///{served['shop']}")
        try:
            await backend._run(lambda connection: connection.exec_driver_sql(  # noqa: SLF001
                "INSERT INTO channel_identities VALUES ('wechat', ?, ?)",
                (openid, customer_id)), write=True)
        finally:
            await backend.close()

    asyncio.run(insert())


def understood(user: dict[str, Any]) -> str:
    """What Rasa's NLU made of a user event, for failure messages."""
    parsed = user.get("parse_data") or {}
    return f"NLU: {user.get('text')!r} -> {(parsed.get('intent') or {}).get('name')}"


def test_an_english_order_status_conversation(wechat_served: dict[str, Any]) -> None:
    user = WeChatUser(wechat_served)

    asked = "\n".join(user.say("where is my order 48213?"))
    [question] = user.user_events()
    answered = "\n".join(user.say("sam@example.com"))

    # An unmapped OpenID is anonymous: it proves the order is its own first.
    assert "e-mail address on order 48213" in asked, f"{asked!r}; {understood(question)}"
    assert (question["input_channel"], question["metadata"]["verified_identity"]) == (
        "wechat", {"channel": "wechat", "external_id": user.openid})
    assert "Order 48213" in answered and "being prepared" in answered, answered
    assert len(user.user_events()) == 2


def test_a_linked_openid_acts_as_its_customer_without_a_proof(
        wechat_served: dict[str, Any]) -> None:
    linked, stranger = WeChatUser(wechat_served), WeChatUser(wechat_served)
    link(wechat_served, linked.openid, "C-002")  # Sam, who owns 48213

    answered = "\n".join(linked.say("where is my order 48213?"))
    asked = "\n".join(stranger.say("where is my order 48213?"))

    assert "Order 48213" in answered and "being prepared" in answered, answered
    assert "e-mail" not in answered
    assert "e-mail address on order 48213" in asked and "being prepared" not in asked


def test_a_retried_message_is_answered_once(wechat_served: dict[str, Any]) -> None:
    user = WeChatUser(wechat_served)
    msg_id = 4242424242424242
    request = user.request(text_xml("what do you charge for postage?", openid=user.openid,
                                    msg_id=msg_id))

    answers = [user.post(*request) for _ in range(3)]  # WeChat's three tries
    replies = user.replies(str(msg_id), 0)
    time.sleep(2)  # a wrongly accepted retry would be handled by now

    assert answers == [(200, "success")] * 3
    assert [event["message_id"] for event in user.user_events()] == [str(msg_id)]
    assert user.api.texts(user.openid) == replies


@pytest.mark.parametrize(
    "options",
    [{"token": "forgedToken123"}, {"aes_key": OTHER_AES_KEY},
     {"app_id": "wxffffffffffffffff"}, {"timestamp": int(time.time()) - 3600}],
    ids=["forged-signature", "wrong-aes-key", "wrong-appid", "stale"],
)
def test_a_request_wechat_did_not_send_reaches_nothing(wechat_served: dict[str, Any],
                                                       options: dict[str, Any]) -> None:
    user = WeChatUser(wechat_served)
    sends = len(user.api.sends)

    status, _ = user.post(*encrypted(text_xml("cancel order 48213", openid=user.openid),
                                     **{"timestamp": int(time.time())} | options))
    time.sleep(2)  # a wrongly accepted message would be handled by now

    assert status == 401
    assert user.user_events() == []
    assert len(user.api.sends) == sends


def test_a_picture_gets_the_polite_answer_without_reaching_rasa(
        wechat_served: dict[str, Any]) -> None:
    user = WeChatUser(wechat_served)
    picture = message_xml("image", openid=user.openid, PicUrl="http://mmbiz.qpic.cn/x",
                          MediaId="m1")

    assert user.post(*user.request(picture)) == (200, "success")
    deadline = time.monotonic() + 10
    while not user.api.texts(user.openid) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert user.api.texts(user.openid) == [ONLY_TEXT_REPLY]
    assert user.user_events() == []


@pytest.mark.bilingual
def test_a_chinese_order_status_conversation(wechat_served: dict[str, Any]) -> None:
    user = WeChatUser(wechat_served)

    asked = "\n".join(user.say("我的订单48213到哪了？"))
    [question] = user.user_events()
    answered = "\n".join(user.say("我的邮箱是sam@example.com"))

    # utter_ask_order_proof (zh): the e-mail address on order 48213, or its postcode.
    assert HAN.search(asked) and "48213" in asked and "邮箱" in asked, (
        f"{asked!r}; {understood(question)}")
    assert question["metadata"]["verified_identity"] == {"channel": "wechat",
                                                         "external_id": user.openid}
    # 48213 (Sam's) is processing: "正在备货，很快就会发货".
    assert HAN.search(answered) and "48213" in answered and "发货" in answered, answered
