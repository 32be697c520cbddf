"""WeChat's retries: each message key is handled once, in a bounded cache."""

from __future__ import annotations

from bot.wechat.dedupe import RecentMessages


def test_a_retry_is_recognised_within_the_ttl() -> None:
    recent = RecentMessages(ttl_s=600, max_size=10)

    assert [recent.seen("msg:1", 100), recent.seen("msg:1", 105), recent.seen("msg:2", 106),
            recent.seen("msg:1", 699)] == [False, True, False, True]


def test_a_key_is_forgotten_after_the_ttl() -> None:
    recent = RecentMessages(ttl_s=600, max_size=10)
    recent.seen("msg:1", 100)

    assert recent.seen("msg:1", 700) is False
    assert len(recent) == 1


def test_the_cache_is_bounded_and_forgets_the_oldest_first() -> None:
    recent = RecentMessages(ttl_s=600, max_size=3)
    for number in range(5):
        recent.seen(f"msg:{number}", 100 + number)

    assert len(recent) == 3
    assert [recent.seen(f"msg:{number}", 110) for number in (4, 3, 2)] == [True, True, True]
    assert recent.seen("msg:0", 110) is False
