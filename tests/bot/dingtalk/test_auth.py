"""bot.dingtalk.auth: DingTalk's signature, the timestamp window, replayed msgIds."""

from __future__ import annotations

import pytest

from bot.dingtalk.auth import (
    DingTalkSignatureError,
    RecentMessageIds,
    is_for_robot,
    sign,
    verify,
)
from tests.bot.dingtalk.conftest import HOUR_MS, NOW_MS, SECRET


# --- signature ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "secret", "expected"),
    [
        # Hand-computed with: printf '%s\n%s' "$ts" "$secret" \
        #   | openssl dgst -sha256 -hmac "$secret" -binary | base64
        (1577262236757, "this is secret", "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="),
        ("1690000000000", SECRET, "yhN3nUdQoKT0HAC2+Ya4o/x8X/fRjfnpzkvSwp1hg7E="),
    ],
)
def test_sign_matches_known_vectors(timestamp: int | str, secret: str, expected: str) -> None:
    assert sign(timestamp, secret) == expected


@pytest.mark.parametrize(
    ("timestamp", "signature", "problem"),
    [
        (None, sign(NOW_MS, SECRET), "missing"),
        (str(NOW_MS), None, "missing"),
        (str(NOW_MS), "", "missing"),
        (str(NOW_MS), sign(NOW_MS, "another secret"), "wrong 'sign'"),
        (str(NOW_MS), "A" + sign(NOW_MS, SECRET)[1:], "wrong 'sign'"),
        (str(NOW_MS), sign(NOW_MS + 1, SECRET), "wrong 'sign'"),
        (str(NOW_MS), "签名", "wrong 'sign'"),
        (str(NOW_MS - HOUR_MS - 1), sign(NOW_MS - HOUR_MS - 1, SECRET), "outside"),
        (str(NOW_MS + HOUR_MS + 1), sign(NOW_MS + HOUR_MS + 1, SECRET), "outside"),
        ("169000000000a", sign("169000000000a", SECRET), "malformed"),
        ("-1", sign("-1", SECRET), "malformed"),
        ("²", sign("²", SECRET), "malformed"),
        ("9" * 40, sign("9" * 40, SECRET), "malformed"),
    ],
)
def test_verify_refuses(timestamp: str | None, signature: str | None, problem: str) -> None:
    with pytest.raises(DingTalkSignatureError, match=problem):
        verify(timestamp, signature, SECRET, now_ms=NOW_MS)


@pytest.mark.parametrize("timestamp", [NOW_MS, NOW_MS - HOUR_MS, NOW_MS + HOUR_MS])
def test_verify_accepts_the_window_edges(timestamp: int) -> None:
    verify(str(timestamp), sign(timestamp, SECRET), SECRET, now_ms=NOW_MS)


def test_verify_uses_the_given_window() -> None:
    stale = NOW_MS - 61_000
    with pytest.raises(DingTalkSignatureError, match="outside"):
        verify(str(stale), sign(stale, SECRET), SECRET, now_ms=NOW_MS, window_s=60)


# --- replayed messages -----------------------------------------------------------------------


def test_recent_message_ids_forget_after_the_window_and_stay_bounded() -> None:
    ids = RecentMessageIds(ttl_s=10, max_size=3)

    assert not ids.seen("a", now=0)
    assert ids.seen("a", now=9)
    assert not ids.seen("a", now=10)
    for i, msg_id in enumerate("bcdef"):
        assert not ids.seen(msg_id, now=11 + i)
    assert len(ids) == 3
    assert not ids.seen("b", now=20)  # pushed out by newer ids


# --- robot check -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("robot_code", "app_key", "expected"),
    [
        ("dingappkey123", "dingappkey123", True),
        ("", "dingappkey123", False),  # no robotCode: refused, not unchecked
        ("otherapp", "dingappkey123", False),
        ("", None, True),
        ("otherapp", None, True),
        ("otherapp", "", True),
    ],
)
def test_is_for_robot(robot_code: str, app_key: str | None, expected: bool) -> None:
    assert is_for_robot(robot_code, app_key) is expected
