"""bot.dingtalk.sessions: the conversations' recent sessionWebhook URLs."""

from __future__ import annotations

import pytest

from bot.dingtalk.sessions import EXPIRY_MARGIN_MS, RecentWebhooks, SessionWebhook
from tests.bot.dingtalk.conftest import HOUR_MS, NOW_MS, WEBHOOK


def test_the_latest_webhook_of_a_conversation_is_kept() -> None:
    webhooks = RecentWebhooks()

    webhooks.remember("dingtalk:a", WEBHOOK + "-old", NOW_MS + HOUR_MS)
    webhooks.remember("dingtalk:a", WEBHOOK, NOW_MS + 2 * HOUR_MS)

    assert webhooks.get("dingtalk:a", NOW_MS) == SessionWebhook(WEBHOOK, NOW_MS + 2 * HOUR_MS)
    assert webhooks.get("dingtalk:b", NOW_MS) is None


def test_a_webhook_is_not_used_near_or_after_its_expiry() -> None:
    webhooks = RecentWebhooks()
    expires = NOW_MS + HOUR_MS

    webhooks.remember("dingtalk:a", WEBHOOK, expires)

    assert webhooks.get("dingtalk:a", expires - EXPIRY_MARGIN_MS - 1) is not None
    assert webhooks.get("dingtalk:a", expires - EXPIRY_MARGIN_MS) is None
    assert len(webhooks) == 0  # forgotten, not only skipped


def test_a_webhook_without_expiry_is_not_kept_and_replaces_the_old_one() -> None:
    webhooks = RecentWebhooks()
    webhooks.remember("dingtalk:a", WEBHOOK, NOW_MS + HOUR_MS)

    webhooks.remember("dingtalk:a", WEBHOOK + "-new", None)

    assert webhooks.get("dingtalk:a", NOW_MS) is None


def test_the_map_is_bounded_and_forgets_the_least_recently_used() -> None:
    webhooks = RecentWebhooks(max_size=2)
    webhooks.remember("dingtalk:a", WEBHOOK, NOW_MS + HOUR_MS)
    webhooks.remember("dingtalk:b", WEBHOOK, NOW_MS + HOUR_MS)
    assert webhooks.get("dingtalk:a", NOW_MS) is not None  # a is now more recent than b

    webhooks.remember("dingtalk:c", WEBHOOK, NOW_MS + HOUR_MS)

    assert len(webhooks) == 2
    assert webhooks.get("dingtalk:b", NOW_MS) is None
    assert webhooks.get("dingtalk:a", NOW_MS) is not None
    assert webhooks.get("dingtalk:c", NOW_MS) is not None


@pytest.mark.parametrize("size", [0, -1])
def test_the_size_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match="max_size"):
        RecentWebhooks(max_size=size)
