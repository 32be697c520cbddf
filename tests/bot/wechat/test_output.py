"""Rendering replies: numbered buttons, and numbered answers back to the payloads."""

from __future__ import annotations

import pytest

from bot.wechat.api import WeChatApi
from bot.wechat.output import ButtonChoices, WeChatOutput, numbered, openid_of
from tests.bot.wechat.conftest import APP_ID, APP_SECRET, OPENID, FakeWeChatApi

BUTTONS = [{"title": "是的，取消订单", "payload": "/affirm"},
           {"title": "不了，保留订单", "payload": "/deny"}]
SENDER = f"wechat:{OPENID}"


@pytest.fixture
def output(wechat_api: FakeWeChatApi) -> WeChatOutput:
    return WeChatOutput(WeChatApi(APP_ID, APP_SECRET, api_base=wechat_api.origin,
                                  timeout_s=2.0))


def test_buttons_become_numbered_lines() -> None:
    assert numbered("确定要取消订单48213吗？", BUTTONS) == (
        "确定要取消订单48213吗？\n1. 是的，取消订单\n2. 不了，保留订单")
    assert numbered("", [{"title": "OK"}]) == "1. OK"


async def test_a_reply_with_buttons_is_one_text_message(output: WeChatOutput,
                                                        wechat_api: FakeWeChatApi) -> None:
    await output.send_response(SENDER, {"text": "确定要取消订单48213吗？", "buttons": BUTTONS})

    assert wechat_api.sends[0][1] == {
        "touser": OPENID, "msgtype": "text",
        "text": {"content": "确定要取消订单48213吗？\n1. 是的，取消订单\n2. 不了，保留订单"}}
    assert output.choices.resolve(SENDER, "2") == "/deny"


@pytest.mark.parametrize(("answer", "meant"),
                         [("1", "/affirm"), (" 2 ", "/deny"), ("２", "/deny"), ("1.", "/affirm"),
                          ("3", "3"), ("0", "0"), ("yes", "yes"), ("12345", "12345")])
def test_a_numbered_answer_means_the_button(answer: str, meant: str) -> None:
    choices = ButtonChoices()
    choices.remember(SENDER, BUTTONS)

    assert choices.resolve(SENDER, answer) == meant


def test_the_buttons_count_for_the_next_message_of_that_conversation_only() -> None:
    choices = ButtonChoices()
    choices.remember(SENDER, BUTTONS)

    assert choices.resolve("wechat:someone-else", "1") == "1"
    assert choices.resolve(SENDER, "where is my order?") == "where is my order?"
    assert choices.resolve(SENDER, "1") == "1"  # answered: forgotten


def test_the_choices_are_bounded() -> None:
    choices = ButtonChoices(max_size=2)
    for user in ("a", "b", "c"):
        choices.remember(f"wechat:{user}", BUTTONS)

    assert len(choices) == 2
    assert choices.resolve("wechat:a", "1") == "1"
    assert choices.resolve("wechat:c", "1") == "/affirm"


async def test_images_and_custom_messages(output: WeChatOutput,
                                          wechat_api: FakeWeChatApi) -> None:
    await output.send_response(SENDER, {"image": "https://shop.example/p.png"})
    await output.send_response(SENDER, {"custom": {
        "msgtype": "news", "news": {"articles": [{"title": "t", "url": "https://x"}]}}})

    assert [body for _, body in wechat_api.sends] == [
        {"touser": OPENID, "msgtype": "text", "text": {"content": "https://shop.example/p.png"}},
        {"touser": OPENID, "msgtype": "news",
         "news": {"articles": [{"title": "t", "url": "https://x"}]}}]


def test_the_openid_is_the_sender_id_without_the_channel() -> None:
    assert openid_of(f"wechat:{OPENID}") == OPENID
    assert openid_of("wechat:a:b") == "a:b"
