"""Hypothesis: whatever the body, the parser and the decryption answer a message or a
refusal (a 4xx), never an unexpected exception (a 500)."""

from __future__ import annotations

import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.wechat.auth import WeChatRequestError, decrypt
from bot.wechat.message import WeChatMessage, WeChatPayloadError, parse
from tests.bot.wechat.conftest import ACCOUNT, NOW, TOKEN, config, signature, signed_query

FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event",
          "EventKey", "PicUrl", "MediaId"]
# XML 1.0 forbids most control characters; the parser refuses those as "not XML" anyway.
XML_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
VALUES = st.recursive(XML_TEXT, lambda children: st.dictionaries(
    st.sampled_from(FIELDS), children, max_size=3), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=len(FIELDS)))
def test_any_message_xml_is_parsed_or_refused(fields: dict) -> None:
    xml = xmltodict.unparse({"xml": fields}, full_document=False)
    try:
        message = parse(xml)
    except WeChatPayloadError:
        return
    assert isinstance(message, WeChatMessage)
    assert message.text is None or isinstance(message.text, str)
    assert message.openid and message.account


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_body_is_parsed_or_refused(body: bytes) -> None:
    try:
        parse(body.decode("utf-8", "replace"))
    except WeChatPayloadError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(min_codepoint=43, max_codepoint=122), min_size=1, max_size=200))
def test_any_encrypt_value_under_a_valid_signature_is_decrypted_or_refused(noise: str) -> None:
    """Someone with the Token but not the EncodingAESKey signs ciphertexts of their own."""
    body = xmltodict.unparse({"xml": {"ToUserName": ACCOUNT, "Encrypt": noise}},
                             full_document=False).encode()
    query = signed_query() | {"encrypt_type": "aes",
                              "msg_signature": signature(TOKEN, str(NOW), "nonce42", noise)}
    try:
        decrypt(body, query, config())
    except WeChatRequestError as refused:
        assert refused.status in (400, 401)
