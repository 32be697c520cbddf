"""The agent console end to end, in two real Chromium contexts at once: a customer in
the web chat and an agent in the console, with the real assistant (Rasa, the action
server, ``python -m console``), all on localhost.

Slow: trains the assistant when no other test of the session has. Screenshots of
the queue, the conversation and the analytics page go to test-artifacts/console/.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.bot.test_webchat_browser import (  # noqa: F401 - browser is a fixture
    ANSWER_MS,
    PAGE,
    bot_answer,
    bot_messages,
    browser,
    expect_connected,
    send,
    settle,
)
from tests.served import BIN, ENV, ROOT, free_port, stop, wait_until_up

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts" / "console"
PASSWORD = "console-test-password"
REFERENCE = re.compile(r"T-[0-9A-F]{8}")
FURIOUS = ("THIS IS THE THIRD TIME YOU LOST MY PARCEL. I WANT MY MONEY BACK NOW, "
           "NEVER SHOPPING HERE AGAIN!!!")


@pytest.fixture(scope="module")
def console(served: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``python -m console`` on the served assistant's databases, with one agent."""
    port = free_port()
    env = ENV | {"SHOP_DATABASE_URL": f"sqlite+aiosqlite:///{served['shop']}",
                 "TRACKER_DATABASE_URL": f"sqlite+aiosqlite:///{served['database']}",
                 "RASA_URL": served["url"], "RASA_JWT_SECRET": served["jwt_secret"],
                 "CONSOLE_HOST": "127.0.0.1", "CONSOLE_PORT": str(port)}
    created = subprocess.run(
        [str(BIN / "python"), "-m", "console", "create-agent", "--username", "dana",
         "--name", "Dana"], cwd=ROOT, env=env | {"CONSOLE_AGENT_PASSWORD": PASSWORD},
        capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    log = tmp_path_factory.mktemp("console") / "console.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(BIN / "python"), "-m", "console"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", [process])
        # localhost, not 127.0.0.1: browsers keep Secure cookies on http://localhost only.
        yield {"url": f"http://localhost:{port}", "log": log}
    finally:
        stop(process)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def context_page(browser: Browser, errors: list[str]) -> Page:  # noqa: F811
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def satisfaction(shop: Path, reference: str) -> int | None:
    with sqlite3.connect(shop) as database:
        return database.execute("SELECT satisfaction FROM tickets WHERE reference = ?",
                                (reference,)).fetchone()[0]


def test_an_agent_takes_over_answers_and_hands_back(served: dict, console: dict,
                                                    browser: Browser) -> None:  # noqa: F811
    errors: list[str] = []
    customer, agent = context_page(browser, errors), context_page(browser, errors)
    try:
        run_takeover(served, console, customer, agent)
        assert not errors, f"JavaScript errors: {errors}"
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        customer.screenshot(path=ARTIFACTS / "customer-last.png", full_page=True)
        agent.screenshot(path=ARTIFACTS / "agent-last.png", full_page=True)
        customer.context.close()
        agent.context.close()


def run_takeover(served: dict, console: dict, customer: Page, agent: Page) -> None:
    # The customer gets angry and is handed over.
    customer.goto(served["url"] + PAGE)
    expect_connected(customer)
    send(customer, FURIOUS)
    reference = REFERENCE.search(bot_answer(customer, "ticket").inner_text()).group(0)

    # The agent signs in; the ticket is in the queue with its sentiment sparkline.
    agent.goto(console["url"] + "/")
    expect(agent).to_have_url(re.compile(r"/login$"))
    agent.get_by_label("User name").fill("dana")
    agent.get_by_label("Password").fill(PASSWORD)
    agent.get_by_role("button", name="Sign in").click()
    row = agent.locator(f'tr.ticket-row[data-reference="{reference}"]')
    expect(row).to_be_visible(timeout=10_000)
    expect(row.locator("svg.sparkline polyline")).to_have_count(1)
    expect(row.locator(".reason")).to_have_text("strongly negative")
    shot(agent, "queue")

    # The agent claims it and sees the conversation with intents and sentiment.
    row.get_by_role("button", name="Claim").click()
    expect(agent).to_have_url(re.compile(f"/tickets/{reference}$"))
    transcript = agent.locator("#transcript")
    expect(transcript.locator(".line.customer").filter(has_text="LOST MY PARCEL")).to_be_visible()
    expect(transcript.locator(".line.customer .sentiment.negative").first).to_be_visible()

    # A new customer message reaches the agent; the assistant says nothing meanwhile.
    before = settle(customer)
    bots = bot_messages(customer).count()
    send(customer, "hello? is anyone there?")
    expect(transcript.locator(".line.customer").filter(has_text="is anyone there")
           ).to_be_visible(timeout=ANSWER_MS)
    assert settle(customer, quiet_s=3.0) == before + 1  # only the customer's own line
    assert bot_messages(customer).count() == bots

    # The agent's reply appears in the customer's chat within 2 seconds.
    agent.get_by_label("Reply to the customer").fill("Hi, I'm Dana. A new parcel goes out today.")
    started = time.monotonic()
    agent.get_by_role("button", name="Send").click()
    expect(bot_messages(customer).filter(has_text="A new parcel goes out today")
           ).to_be_visible(timeout=2_000)
    took = time.monotonic() - started
    print(f"agent reply shown to the customer after {took:.2f} s")
    assert took < 2.0
    expect(transcript.locator(".line.agent").filter(has_text="new parcel")).to_be_visible()
    shot(agent, "conversation")

    # One click hands back: the assistant greets again and asks for a rating.
    agent.get_by_role("button", name="Hand back to the assistant").click()
    bot_answer(customer, "Hello again, it's the shop assistant")
    expect(agent.locator("#status")).to_have_text("closed", timeout=10_000)
    rating = customer.get_by_role("button", name=re.compile(r"^4 "))
    expect(rating).to_be_visible(timeout=ANSWER_MS)
    rating.click()
    bot_answer(customer, "Thank you for telling us")
    assert satisfaction(served["shop"], reference) == 4

    # The customer's next question is the assistant's again.
    send(customer, "what do you charge for postage?")
    bot_answer(customer, "Standard shipping")

    # The analytics page draws every plot from the real databases.
    agent.goto(console["url"] + "/analytics")
    images = agent.locator(".plot img")
    expect(images).to_have_count(7)
    agent.wait_for_function(
        "() => [...document.images].every(image => image.complete && image.naturalWidth > 0)",
        timeout=60_000)
    shot(agent, "analytics")
    agent.goto(console["url"] + "/review")
    expect(agent.locator("h1")).to_have_text("Review inbox")
    shot(agent, "review")
