"""The bilingual assistant end to end over REST and in the web chat: Chinese customers
served in Chinese, English ones as before.

The default assistant (config.yml) is bilingual: these tests talk to the session's
served one (tests/conftest.py). Marker ``bilingual``: ``make test-chinese`` runs the
Chinese end-to-end tests alone.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.bot.test_webchat_browser import (  # noqa: F401 - browser is a fixture
    ANSWER_MS,
    PAGE,
    ROOT,
    bot_answer,
    browser,
)
from tests.served import post

pytestmark = [pytest.mark.slow, pytest.mark.bilingual]

HAN = re.compile(r"[\u4e00-\u9fff]")
REFERENCE = re.compile(r"T-[0-9A-F]{8}")


@pytest.fixture(scope="module")
def bilingual(served: dict) -> dict:
    """The session's served assistant: the default config is bilingual."""
    return served


def say(served: dict, sender: str, message: str) -> str:
    replies = post(served["url"] + "/webhooks/rest/webhook", {"sender": sender,
                                                             "message": message})
    return " ".join(reply.get("text", "") for reply in replies)


def chinese(text: str) -> bool:
    return bool(HAN.search(text))


def test_a_chinese_order_status_conversation(bilingual: dict) -> None:
    asked = say(bilingual, "zh-status", "我的订单48213到哪了？")
    answered = say(bilingual, "zh-status", "我的邮箱是sam@example.com")

    assert chinese(asked) and "48213" in asked and "邮箱" in asked, asked
    assert chinese(answered) and "48213" in answered, answered


def returns_of(served: dict, order_id: str) -> int:
    with sqlite3.connect(served["shop"]) as shop:
        return shop.execute("SELECT COUNT(*) FROM returns WHERE order_id = ?",
                            (order_id,)).fetchone()[0]


def test_a_chinese_return_conversation(bilingual: dict) -> None:
    sender = "zh-return"
    before = returns_of(bilingual, "55120")  # the session's shop is shared
    turns = [say(bilingual, sender, "我要退货")]
    turns.append(say(bilingual, sender, "订单号是55120"))
    if "邮箱" in turns[-1]:
        turns.append(say(bilingual, sender, "niamh@example.com"))

    assert all(chinese(turn) for turn in turns), turns
    assert "Goodbye" not in turns[0]
    assert returns_of(bilingual, "55120") == before + 1, turns


def test_a_chinese_complaint_is_handed_over_in_chinese(bilingual: dict) -> None:
    sender = "zh-complaint"
    turns = [say(bilingual, sender, "我要投诉，你们寄来的咖啡机外壳摔裂了，根本没法用")]
    if not REFERENCE.search(turns[-1]):
        turns.append(say(bilingual, sender, "咖啡机外壳摔裂了，包装也破了，根本没法用"))

    assert all(chinese(turn) for turn in turns), turns
    assert REFERENCE.search(turns[-1]), turns


def test_english_is_unchanged_in_the_bilingual_assistant(bilingual: dict) -> None:
    asked = say(bilingual, "en-status", "where is my order 12345?")

    assert "e-mail address on order 12345" in asked and not chinese(asked)


def send_zh(page: Page, text: str) -> None:
    """``send`` of the web chat tests, on the page in Chinese (its label is 您的消息)."""
    field = page.get_by_label("您的消息")
    field.fill(text)
    field.press("Enter")
    expect(page.locator(".message--user").last).to_have_text(text)


def test_a_chinese_customer_in_the_web_chat(bilingual: dict, browser: Browser) -> None:  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport={"width": 900, "height": 900})
    page = context.new_page()
    try:
        page.goto(bilingual["url"] + PAGE)
        expect(page.locator("#status")).to_have_text("已连接", timeout=ANSWER_MS)
        send_zh(page, "我的订单48213到哪了？")
        asked = bot_answer(page, "48213").inner_text()
        send_zh(page, "sam@example.com")
        answered = bot_answer(page, "备货").inner_text()
        send_zh(page, "我要投诉，你们寄来的咖啡机外壳摔裂了，根本没法用")
        filed = bot_answer(page, "T-").inner_text()
    finally:
        artifacts = ROOT / "test-artifacts" / "bilingual"
        artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=artifacts / "chinese-web-chat.png", full_page=True)
        context.close()

    assert "邮箱" in asked and chinese(answered) and REFERENCE.search(filed)
