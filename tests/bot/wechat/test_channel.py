"""The channel over HTTP as Rasa mounts it: WeChat's URL check, signed and encrypted
messages in (made by wechatpy's crypto helpers), replies out through a loopback
stand-in of the customer-service API, and every refusal reaching nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage

from bot.wechat.message import ONLY_TEXT_REPLY, WELCOME_REPLY
from tests.bot.wechat.conftest import (
    ACCOUNT,
    APP_SECRET,
    NOW,
    OPENID,
    OTHER_AES_KEY,
    Account,
    Clock,
    FakeWeChatApi,
    assert_no_secrets,
    encrypted,
    message_xml,
    signed_query,
    text_xml,
)

Start = Callable[..., Awaitable[Account]]


# --- the URL check ---------------------------------------------------------------------------


async def test_the_url_check_echoes_echostr(account: Start) -> None:
    wechat = await account()

    assert await wechat.get(signed_query() | {"echostr": "7364827349823"}) == (
        200, "7364827349823")


@pytest.mark.parametrize(
    ("query", "status"),
    [(signed_query(token="forgedToken123") | {"echostr": "e"}, 401),
     (signed_query(timestamp=NOW - 3600) | {"echostr": "e"}, 401),
     ({"echostr": "e"}, 401),
     (signed_query(), 400)],
    ids=["forged", "stale", "unsigned", "no-echostr"],
)
async def test_a_url_check_wechat_did_not_sign_echoes_nothing(
        account: Start, query: dict[str, str], status: int) -> None:
    wechat = await account()

    code, text = await wechat.get(query)

    assert code == status and text != "e"


async def test_health(account: Start) -> None:
    wechat = await account()

    async with wechat.session.get(f"{wechat.base_url}/") as reply:
        assert (reply.status, await reply.json()) == (200, {"status": "ok"})


# --- messages in, replies out ----------------------------------------------------------------


@pytest.mark.parametrize("text", ["where is my order 48213?", "我的订单48213到哪了？"])
async def test_a_text_message_reaches_rasa_and_the_reply_goes_out(
        account: Start, wechat_api: FakeWeChatApi, text: str) -> None:
    wechat = await account()

    assert await wechat.send(text_xml(text, msg_id=6054768590064713728)) == (200, "success")

    [message] = wechat.received
    assert (message.text, message.sender_id, message.input_channel, message.message_id) == (
        text, f"wechat:{OPENID}", "wechat", "6054768590064713728")
    assert message.metadata == {
        "verified_identity": {"channel": "wechat", "external_id": OPENID},
        "wechat": {"msg_id": "6054768590064713728", "create_time": NOW, "account": ACCOUNT}}
    assert wechat_api.sends == [(wechat_api.sends[0][0], {
        "touser": OPENID, "msgtype": "text", "text": {"content": f"You said: {text}"}})]


async def test_the_answer_does_not_wait_for_rasa(account: Start,
                                                 wechat_api: FakeWeChatApi) -> None:
    release = asyncio.Event()

    async def slow_agent(message: UserMessage) -> None:
        await release.wait()
        await message.output_channel.send_text_message(message.sender_id, "later")

    wechat = await account(slow_agent)
    query, body = encrypted(text_xml("hi"))
    async with wechat.session.post(f"{wechat.base_url}/webhook", params=query,
                                   data=body) as reply:
        answered = reply.status, await reply.text()

    assert answered == (200, "success") and wechat_api.sends == []
    release.set()
    await wechat.channel.join()
    assert wechat_api.texts(OPENID) == ["later"]


async def test_a_retried_message_is_handled_once(account: Start,
                                                 wechat_api: FakeWeChatApi) -> None:
    """WeChat POSTs a message up to 3 times when the answer is slow; the retries have
    the same MsgId (and here the very same signed request)."""
    wechat = await account()
    xml = text_xml("where is my order 48213?", msg_id=1234567890123456)
    first = encrypted(xml, nonce="first")

    answers = [await wechat.post(*first), await wechat.post(*first),
               await wechat.send(xml, nonce="third", timestamp=NOW + 10)]

    assert answers == [(200, "success")] * 3
    assert [message.text for message in wechat.received] == ["where is my order 48213?"]
    assert wechat_api.texts(OPENID) == ["You said: where is my order 48213?"]


async def test_retries_arriving_together_are_handled_once(account: Start,
                                                          wechat_api: FakeWeChatApi) -> None:
    wechat = await account()
    request = encrypted(text_xml("hi", msg_id=77))

    answers = await asyncio.gather(*(wechat.post(*request) for _ in range(3)))

    assert answers == [(200, "success")] * 3
    assert len(wechat.received) == 1 and len(wechat_api.sends) == 1


async def test_two_messages_with_other_msgids_are_both_handled(account: Start) -> None:
    wechat = await account()

    await wechat.send(text_xml("hi", msg_id=1))
    await wechat.send(text_xml("hi", msg_id=2))

    assert len(wechat.received) == 2


@pytest.mark.parametrize(
    "xml",
    [message_xml("image", PicUrl="http://mmbiz.qpic.cn/x", MediaId="m1"),
     message_xml("voice", MediaId="m1", Format="amr"),
     message_xml("video", MediaId="m1", ThumbMediaId="t1"),
     message_xml("location", Location_X="23.1", Location_Y="113.3", Scale="20", Label="GZ"),
     message_xml("link", Title="t", Description="d", Url="https://example.com"),
     message_xml("event", Event="CLICK", EventKey="ORDERS")],
    ids=["image", "voice", "video", "location", "link", "menu-click"],
)
async def test_other_messages_get_a_polite_answer_without_rasa(
        account: Start, wechat_api: FakeWeChatApi, xml: str) -> None:
    wechat = await account()

    assert await wechat.send(xml) == (200, "success")

    assert wechat.received == []
    assert wechat_api.texts(OPENID) == [ONLY_TEXT_REPLY]
    assert "请直接输入" in ONLY_TEXT_REPLY and "Please type" in ONLY_TEXT_REPLY


async def test_a_new_follower_is_welcomed_once(account: Start,
                                               wechat_api: FakeWeChatApi) -> None:
    wechat = await account()
    subscribe = message_xml("event", Event="subscribe")

    await wechat.send(subscribe)
    await wechat.send(subscribe)  # WeChat's retry: same user, same CreateTime

    assert wechat.received == [] and wechat_api.texts(OPENID) == [WELCOME_REPLY]


@pytest.mark.parametrize("event", ["unsubscribe", "LOCATION", "VIEW"])
async def test_events_that_ask_nothing_get_no_answer(account: Start,
                                                     wechat_api: FakeWeChatApi,
                                                     event: str) -> None:
    wechat = await account()

    assert await wechat.send(message_xml("event", Event=event)) == (200, "success")

    assert wechat.received == [] and wechat_api.sends == []


async def test_a_numbered_answer_sends_the_buttons_payload(account: Start,
                                                           wechat_api: FakeWeChatApi) -> None:
    async def agent(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {
            "text": "Do you really want to cancel order 36402?",
            "buttons": [{"title": "Yes, cancel it", "payload": "/affirm"},
                        {"title": "No, keep it", "payload": "/deny"}]})

    wechat = await account(agent)

    await wechat.send(text_xml("cancel order 36402"))
    await wechat.send(text_xml("1"))

    assert [message.text for message in wechat.received] == ["cancel order 36402", "/affirm"]
    assert wechat_api.texts(OPENID)[0] == (
        "Do you really want to cancel order 36402?\n1. Yes, cancel it\n2. No, keep it")


async def test_a_failing_agent_does_not_fail_the_next_message(account: Start) -> None:
    calls: list[str] = []

    async def agent(message: UserMessage) -> None:
        calls.append(message.text)
        if len(calls) == 1:
            raise RuntimeError("boom")

    wechat = await account(agent)

    assert await wechat.send(text_xml("one")) == (200, "success")
    assert await wechat.send(text_xml("two")) == (200, "success")
    assert calls == ["one", "two"]


# --- refusals: nothing reaches Rasa, nothing is sent -----------------------------------------


def _without(query: dict[str, str], key: str) -> dict[str, str]:
    return {name: value for name, value in query.items() if name != key}


def refused_requests() -> list[Any]:
    xml = text_xml("cancel order 48213")
    good_query, good_body = encrypted(xml)
    other_query, other_body = encrypted(text_xml("hi"))
    return [
        pytest.param(encrypted(xml, token="forgedToken123"), 401, id="forged-signature"),
        pytest.param((good_query | {"signature": "0" * 40}, good_body), 401,
                     id="forged-query-signature"),
        pytest.param((other_query, good_body), 401, id="body-of-another-request"),
        pytest.param(encrypted(xml, aes_key=OTHER_AES_KEY), 401, id="wrong-aes-key"),
        pytest.param(encrypted(xml, app_id="wxffffffffffffffff"), 401, id="wrong-appid"),
        pytest.param(encrypted(xml, timestamp=NOW - 301), 401, id="stale"),
        pytest.param(encrypted(xml, timestamp=NOW + 301), 401, id="future"),
        pytest.param((_without(good_query, "signature"), good_body), 401, id="no-signature"),
        pytest.param((_without(good_query, "timestamp"), good_body), 401, id="no-timestamp"),
        pytest.param((_without(good_query, "nonce"), good_body), 401, id="no-nonce"),
        pytest.param((_without(good_query, "msg_signature"), good_body), 401,
                     id="no-msg-signature"),
        pytest.param((_without(good_query, "encrypt_type"), good_body), 401,
                     id="no-encrypt-type"),
        pytest.param(({}, good_body), 401, id="no-query"),
        pytest.param((signed_query(), xml.encode()), 401, id="plain-body-in-safe-mode"),
        pytest.param((good_query, b"<xml><Encrypt></Encrypt></xml>"), 400, id="empty-encrypt"),
        pytest.param((good_query, b"not xml"), 400, id="not-xml"),
        pytest.param((good_query, b""), 400, id="empty-body"),
    ]


@pytest.mark.parametrize(("request_", "status"), refused_requests())
async def test_a_request_wechat_did_not_send_reaches_nothing(
        account: Start, wechat_api: FakeWeChatApi, caplog: pytest.LogCaptureFixture,
        request_: tuple[dict[str, str], bytes], status: int) -> None:
    wechat = await account()

    with caplog.at_level(logging.WARNING, logger="bot.wechat"):
        code, _ = await wechat.post(*request_)

    assert code == status
    assert wechat.received == []
    assert wechat_api.sends == [] and wechat_api.token_requests == []
    assert "WeChat: refused" in caplog.text or "WeChat: malformed" in caplog.text
    assert_no_secrets(caplog, "cancel order 48213")


async def test_a_refused_request_does_not_burn_its_msgid(account: Start) -> None:
    """A forged request naming a real message's MsgId must not make the real one look
    like a retry."""
    wechat = await account()
    xml = text_xml("hi", msg_id=99)

    await wechat.send(xml, aes_key=OTHER_AES_KEY)
    await wechat.send(xml)

    assert [message.text for message in wechat.received] == ["hi"]


async def test_a_decrypted_but_malformed_message_is_refused(account: Start) -> None:
    wechat = await account()

    code, _ = await wechat.send("<xml><MsgType>text</MsgType></xml>")

    assert code == 400 and wechat.received == []


# --- plain mode ------------------------------------------------------------------------------


async def test_plain_mode_users_stay_anonymous(account: Start,
                                               wechat_api: FakeWeChatApi) -> None:
    """In plain mode the signature covers the query only, so the OpenID in the body is
    not WeChat's word: no verified_identity, the user proves orders."""
    wechat = await account(mode="plain", encoding_aes_key=None)

    assert await wechat.post(signed_query(), text_xml("hi").encode()) == (200, "success")
    assert await wechat.post(signed_query(token="forgedToken123"),
                             text_xml("again").encode()) == (401, "wrong 'signature'")

    [message] = wechat.received
    assert message.sender_id == f"wechat:{OPENID}"
    assert "verified_identity" not in message.metadata
    assert wechat_api.texts(OPENID) == ["You said: hi"]


# --- the clock -------------------------------------------------------------------------------


async def test_an_accepted_request_is_refused_once_stale(account: Start, clock: Clock) -> None:
    wechat = await account()
    request = encrypted(text_xml("hi", msg_id=5))

    assert (await wechat.post(*request))[0] == 200
    clock.now = NOW + 301

    assert await wechat.post(*request) == (401, "'timestamp' is outside the accepted window")
    assert len(wechat.received) == 1


def test_the_secrets_are_not_in_the_channels_repr() -> None:
    from bot.wechat.channel import WeChatInput
    from tests.bot.wechat.conftest import config

    channel = WeChatInput(config())
    assert APP_SECRET not in repr(channel.config) + repr(channel.api)


async def test_an_agents_reply_without_a_message_reaches_the_user(
        account: Start, wechat_api: FakeWeChatApi) -> None:
    """Rasa's ``output_channel=latest`` (a human agent's reply through the HTTP API)
    uses get_output_channel: the recipient id names the user."""
    wechat = await account()

    await wechat.channel.get_output_channel().send_response(
        f"wechat:{OPENID}", {"text": "Agent Wang here: your refund is on its way."})

    assert wechat_api.texts(OPENID) == ["Agent Wang here: your refund is on its way."]
