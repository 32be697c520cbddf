"""Signatures, the timestamp window and safe-mode decryption, on requests that
wechatpy's own crypto helpers made."""

from __future__ import annotations

import pytest

from bot.wechat.auth import MAX_BODY_BYTES, WeChatRequestError, check_query, decrypt
from tests.bot.wechat.conftest import (
    NOW,
    OTHER_AES_KEY,
    TOKEN,
    config,
    encrypted,
    signature,
    signed_query,
    text_xml,
)


def test_a_signed_query_passes() -> None:
    check_query(signed_query(), config(), NOW + 10)


@pytest.mark.parametrize("missing", ["signature", "timestamp", "nonce"])
def test_a_query_without_a_signed_parameter_is_refused(missing: str) -> None:
    query = signed_query()
    del query[missing]

    with pytest.raises(WeChatRequestError, match="missing") as refused:
        check_query(query, config(), NOW)
    assert refused.value.status == 401


@pytest.mark.parametrize(
    ("query", "error"),
    [(signed_query(token="forgedToken123"), "wrong 'signature'"),
     (signed_query() | {"nonce": "another-nonce"}, "wrong 'signature'"),
     (signed_query(timestamp=NOW - 301), "outside the accepted window"),
     (signed_query(timestamp=NOW + 301), "outside the accepted window"),
     (signed_query() | {"timestamp": "１６９"}, "malformed 'timestamp'"),
     (signed_query() | {"timestamp": "1e9"}, "malformed 'timestamp'")],
    ids=["forged", "other-nonce", "stale", "future", "fullwidth-digits", "not-digits"],
)
def test_a_query_wechat_did_not_sign_now_is_refused(query: dict[str, str], error: str) -> None:
    with pytest.raises(WeChatRequestError, match=error) as refused:
        check_query(query, config(), NOW)
    assert refused.value.status == 401


def test_the_window_is_configurable() -> None:
    check_query(signed_query(timestamp=NOW - 3000), config(timestamp_window_s=3600), NOW)


def test_a_safe_mode_message_is_decrypted_through_the_sdk() -> None:
    xml = text_xml("我的订单48213到哪了？")
    query, body = encrypted(xml)

    assert decrypt(body, query, config()) == xml


@pytest.mark.parametrize(
    ("options", "error"),
    [({"aes_key": OTHER_AES_KEY}, "EncodingAESKey"),
     ({"app_id": "wxffffffffffffffff"}, "another AppID"),
     ({"token": "forgedToken123"}, "wrong 'msg_signature'")],
    ids=["wrong-aes-key", "wrong-appid", "forged-msg-signature"],
)
def test_a_body_wechat_did_not_encrypt_for_us_is_refused(options: dict[str, str],
                                                        error: str) -> None:
    query, body = encrypted(text_xml("hi"), **options)

    with pytest.raises(WeChatRequestError, match=error) as refused:
        decrypt(body, query, config())
    assert refused.value.status == 401


def test_an_envelope_signed_for_another_body_is_refused() -> None:
    query, _ = encrypted(text_xml("hi"))
    _, other_body = encrypted(text_xml("cancel order 48213"))

    with pytest.raises(WeChatRequestError, match="wrong 'msg_signature'"):
        decrypt(other_body, query, config())


def test_noise_under_a_valid_msg_signature_is_refused_as_undecryptable() -> None:
    # Someone with the Token but not the EncodingAESKey signs a ciphertext of their
    # own (13 bytes: not even a whole AES block).
    noise = "bm9pc2Ugbm9pc2Ugbm9pc2U="
    query = signed_query() | {"encrypt_type": "aes",
                              "msg_signature": signature(TOKEN, str(NOW), "nonce42", noise)}
    body = f"<xml><ToUserName>gh_1</ToUserName><Encrypt>{noise}</Encrypt></xml>".encode()

    with pytest.raises(WeChatRequestError, match="cannot decrypt") as refused:
        decrypt(body, query, config())
    assert refused.value.status == 401


@pytest.mark.parametrize(
    ("body", "query_changes", "status"),
    [(b"not xml at all", {}, 400),
     (b"<xml><ToUserName>gh_1</ToUserName></xml>", {}, 400),
     (b"<xml><Encrypt><a>1</a></Encrypt></xml>", {}, 400),
     (b"<!DOCTYPE x [<!ENTITY e 'boom'>]><xml><Encrypt>&e;</Encrypt></xml>", {}, 400),
     (b"<xml>" + b"a" * MAX_BODY_BYTES + b"</xml>", {}, 413),
     (None, {"encrypt_type": "raw"}, 401),
     (None, {"msg_signature": ""}, 401)],
    ids=["not-xml", "no-encrypt", "nested-encrypt", "entities", "too-large",
         "not-aes", "no-msg-signature"],
)
def test_a_body_that_is_no_safe_mode_envelope_is_refused(
        body: bytes | None, query_changes: dict[str, str], status: int) -> None:
    query, good_body = encrypted(text_xml("hi"))

    with pytest.raises(WeChatRequestError) as refused:
        decrypt(body if body is not None else good_body, query | query_changes, config())
    assert refused.value.status == status


def test_a_plain_mode_body_is_the_message() -> None:
    xml = text_xml("where is my order 48213?")

    assert decrypt(xml.encode(), signed_query(), config(mode="plain",
                                                        encoding_aes_key=None)) == xml


def test_a_plain_mode_body_must_be_utf8() -> None:
    with pytest.raises(WeChatRequestError) as refused:
        decrypt(b"\xff\xfe", signed_query(), config(mode="plain", encoding_aes_key=None))
    assert refused.value.status == 400
