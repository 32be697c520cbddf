"""Hypothesis: the DingTalk payload parser takes any body without crashing."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.dingtalk.message import DingTalkMessage, DingTalkPayloadError, parse_payload

KEYS = ["msgtype", "text", "msgId", "createAt", "conversationType", "conversationId",
        "senderId", "senderNick", "senderStaffId", "sessionWebhook",
        "sessionWebhookExpiredTime", "isAdmin", "robotCode", "chatbotUserId"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)


def parsed_or_refused(body: bytes) -> None:
    try:
        message = parse_payload(body)
    except DingTalkPayloadError:
        return
    assert isinstance(message, DingTalkMessage)
    assert message.text is None or isinstance(message.text, str)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes(body: bytes) -> None:
    parsed_or_refused(body)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), JSON_VALUES, max_size=len(KEYS)))
def test_any_object_with_the_platform_keys(payload: dict) -> None:
    parsed_or_refused(json.dumps(payload).encode())


@settings(max_examples=100, deadline=None)
@given(st.text(), st.sampled_from(["1", "2", 1, 2]))
def test_any_text_of_a_well_formed_message(text: str, conversation_type: object) -> None:
    payload = {"msgtype": "text", "text": {"content": text}, "msgId": "m1",
               "conversationType": conversation_type, "conversationId": "c1",
               "senderId": "s1", "sessionWebhook": "https://oapi.dingtalk.com/robot/x"}

    message = parse_payload(json.dumps(payload).encode())

    assert message.text == text.strip()
