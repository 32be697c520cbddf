"""Parsing what WeChat POSTs (through wechatpy.parse_message), and what the channel does
with each kind of message."""

from __future__ import annotations

import pytest

from bot.wechat.message import (
    IGNORE,
    ONLY_TEXT,
    TO_RASA,
    WELCOME,
    WeChatPayloadError,
    parse,
)
from tests.bot.wechat.conftest import ACCOUNT, NOW, OPENID, message_xml, text_xml


def test_a_chinese_text_message() -> None:
    message = parse(text_xml("  我的订单48213到哪了？ ", msg_id=6054768590064713728))

    assert (message.msg_type, message.text, message.msg_id) == (
        "text", "我的订单48213到哪了？", "6054768590064713728")
    assert (message.openid, message.account, message.create_time) == (OPENID, ACCOUNT, NOW)
    assert message.rasa_sender_id == f"wechat:{OPENID}"
    assert message.handling == TO_RASA
    assert message.dedupe_key == "msg:6054768590064713728"
    assert message.metadata() == {"wechat": {"msg_id": "6054768590064713728",
                                             "create_time": NOW, "account": ACCOUNT}}


def test_an_empty_text_is_ignored() -> None:
    assert parse(text_xml("   ")).handling == IGNORE


@pytest.mark.parametrize(
    ("xml", "handling"),
    [(message_xml("image", PicUrl="http://mmbiz.qpic.cn/x", MediaId="m1"), ONLY_TEXT),
     (message_xml("voice", MediaId="m1", Format="amr"), ONLY_TEXT),
     (message_xml("video", MediaId="m1", ThumbMediaId="t1"), ONLY_TEXT),
     (message_xml("shortvideo", MediaId="m1", ThumbMediaId="t1"), ONLY_TEXT),
     (message_xml("location", Location_X="23.1", Location_Y="113.3", Scale="20",
                  Label="Guangzhou"), ONLY_TEXT),
     (message_xml("link", Title="t", Description="d", Url="https://example.com"), ONLY_TEXT),
     (message_xml("event", Event="CLICK", EventKey="ORDERS"), ONLY_TEXT),
     (message_xml("event", Event="pic_weixin", EventKey="P"), ONLY_TEXT),
     (message_xml("event", Event="a_future_event"), ONLY_TEXT),
     (message_xml("event", Event="subscribe"), WELCOME),
     (message_xml("event", Event="subscribe", EventKey="qrscene_123", Ticket="t"), WELCOME),
     (message_xml("event", Event="unsubscribe"), IGNORE),
     (message_xml("event", Event="LOCATION", Latitude="23.1", Longitude="113.3",
                  Precision="119"), IGNORE),
     (message_xml("event", Event="VIEW", EventKey="https://shop.example"), IGNORE),
     (message_xml("event", Event="TEMPLATESENDJOBFINISH", Status="success"), IGNORE),
     (message_xml("a_future_type"), ONLY_TEXT)],
    ids=["image", "voice", "video", "shortvideo", "location", "link", "click", "pic",
         "unknown-event", "subscribe", "subscribe-qr", "unsubscribe", "location-report",
         "view", "template-result", "unknown-type"],
)
def test_what_the_channel_does_with_each_kind(xml: str, handling: str) -> None:
    assert parse(xml).handling == handling


def test_events_have_no_msgid_and_are_told_apart_by_user_and_time() -> None:
    event = parse(message_xml("event", Event="subscribe"))

    assert event.msg_id is None and event.event == "subscribe"
    assert event.dedupe_key == f"event:{OPENID}:{NOW}:subscribe"


@pytest.mark.parametrize(
    "xml",
    ["", "not xml", "<xml></xml>", "<other><MsgType>text</MsgType></other>",
     text_xml("hi").replace(f"<FromUserName>{OPENID}</FromUserName>", ""),
     text_xml("hi").replace(f"<ToUserName>{ACCOUNT}</ToUserName>", ""),
     text_xml("hi", msg_id=12).replace("<MsgId>12</MsgId>", "<MsgId>12a</MsgId>"),
     text_xml("hi", msg_id=12).replace("<MsgId>12</MsgId>", "<MsgId>" + "9" * 5000
                                       + "</MsgId>"),
     text_xml("hi").replace(f"<CreateTime>{NOW}</CreateTime>", "<CreateTime>-1</CreateTime>"),
     text_xml("hi").replace("<Content>hi</Content>", "<Content><b>hi</b></Content>"),
     text_xml("hi").replace("<MsgType>text</MsgType>", "<MsgType><a>1</a></MsgType>"),
     message_xml("event")],
    ids=["empty", "not-xml", "empty-xml", "other-root", "no-openid", "no-account",
         "msgid-letters", "msgid-huge", "negative-time", "nested-content", "nested-type",
         "event-without-event"],
)
def test_a_malformed_message_is_refused(xml: str) -> None:
    with pytest.raises(WeChatPayloadError):
        parse(xml)
