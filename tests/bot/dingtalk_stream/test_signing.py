"""The shared-secret signature between the bridge and Rasa's channel."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bot.dingtalk_stream.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BridgeSignatureError,
    secret_problem,
    sign,
    signed_headers,
    verify,
)

SECRET = "s" * 32
NOW_MS = 1_690_000_000_000
BODY = '{"msgtype": "text", "text": {"content": "我的订单"}}'.encode()


def test_the_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1690000000000\n" + BODY, hashlib.sha256).hexdigest()

    assert sign(SECRET, NOW_MS, BODY) == expected
    assert signed_headers(SECRET, BODY, NOW_MS) == {TIMESTAMP_HEADER: "1690000000000",
                                                    SIGNATURE_HEADER: expected}


def test_a_fresh_signature_verifies() -> None:
    headers = signed_headers(SECRET, BODY, NOW_MS - 299_000)

    verify(headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], BODY, SECRET, now_ms=NOW_MS,
           window_s=300)


@pytest.mark.parametrize(("change", "error"), [
    ({"secret": "t" * 32}, "wrong signature"),
    ({"body": BODY + b" "}, "wrong signature"),
    ({"stamp": NOW_MS - 301_000}, "timestamp outside the accepted window"),
    ({"stamp": NOW_MS + 301_000}, "timestamp outside the accepted window"),
], ids=["other-secret", "other-body", "stale", "future"])
def test_a_signature_for_something_else_is_refused(change: dict, error: str) -> None:
    stamp = change.get("stamp", NOW_MS)
    signature = sign(change.get("secret", SECRET), stamp, change.get("body", BODY))

    with pytest.raises(BridgeSignatureError, match=error):
        verify(str(stamp), signature, BODY, SECRET, now_ms=NOW_MS, window_s=300)


@pytest.mark.parametrize(("stamp", "signature", "error"), [
    (None, sign(SECRET, NOW_MS, BODY), "missing"),
    (str(NOW_MS), None, "missing"),
    ("", "", "missing"),
    ("1690000000000.0", sign(SECRET, NOW_MS, BODY), "malformed"),
    ("１６９", sign(SECRET, NOW_MS, BODY), "malformed"),  # full-width digits
    (str(NOW_MS), sign(SECRET, NOW_MS, BODY).upper(), "malformed"),
    (str(NOW_MS), sign(SECRET, NOW_MS, BODY)[:-1], "malformed"),
])
def test_missing_or_malformed_headers_are_refused(stamp: str | None, signature: str | None,
                                                  error: str) -> None:
    with pytest.raises(BridgeSignatureError, match=error):
        verify(stamp, signature, BODY, SECRET, now_ms=NOW_MS)


@pytest.mark.parametrize(("secret", "problem"), [
    (None, "missing"), ("", "missing"), ("   ", "missing"),
    ("x" * 31, "31 bytes, fewer than 32"),
    ("密" * 10, "30 bytes"),  # bytes count, not characters
    ("密" * 11, None),
    ("x" * 32, None),
])
def test_the_shared_secret_has_at_least_32_bytes(secret: str | None,
                                                 problem: str | None) -> None:
    found = secret_problem(secret)

    assert (found is None) if problem is None else (problem in found)
