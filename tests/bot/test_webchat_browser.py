"""The web chat page (bot/webchat/) in a real headless Chromium, driven by Playwright.

Slow: the conversation test talks to the real assistant (the session-scoped ``served``
fixture trains it and runs ``rasa run`` with credentials.yml); the reconnection test
restarts a small stand-in server that serves the page and echoes.

Needs Debian's Chromium at /usr/bin/chromium (``make test`` installs it); without it
the tests fail, unless ``ALLOW_NO_BROWSER=1`` is set, which skips them. Screenshots
(and on failure the server's log) go to test-artifacts/webchat/ at the repository root.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "webchat"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PAGE = "/webhooks/webchat/"
ANSWER_MS = 60_000  # one answer of the real assistant on a slow 2-core CPU
SESSION_KEY = "shopwise-webchat:session"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium from /usr/bin/chromium (never a downloaded one)."""
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (make test does)"
        if os.environ.get("ALLOW_NO_BROWSER") == "1":
            pytest.skip(f"{reason}; skipped because ALLOW_NO_BROWSER=1")
        pytest.fail(f"{reason}, or set ALLOW_NO_BROWSER=1 to skip the browser tests")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (empty localStorage); its last screen is kept."""
    context = browser.new_context(viewport={"width": 900, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=ARTIFACTS / f"{request.node.name}-last.png", full_page=True)
        context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def send(page: Page, text: str) -> None:
    """Types ``text`` into the labelled input and presses Enter."""
    field = page.get_by_label("Your message")
    field.fill(text)
    field.press("Enter")
    expect(page.locator(".message--user").last).to_have_text(text)


def bot_messages(page: Page):
    return page.locator("#messages .message--bot")


def expect_connected(page: Page, timeout: int = ANSWER_MS) -> None:
    expect(page.locator("#status")).to_have_text("Connected", timeout=timeout)


def bot_answer(page: Page, text: str):
    """The last bot message that contains ``text`` (once there is one)."""
    answer = bot_messages(page).filter(has_text=text).last
    expect(answer).to_be_visible(timeout=ANSWER_MS)
    return answer


def settle(page: Page, quiet_s: float = 2.0) -> int:
    """Waits until no message has arrived for ``quiet_s``; returns how many are shown."""
    count, since = -1, time.monotonic()
    while time.monotonic() - since < quiet_s:
        now = page.locator("#messages > li").count()
        if now != count:
            count, since = now, time.monotonic()
        page.wait_for_timeout(200)
    return count


# -- against the real assistant -----------------------------------------------------------


def tracker_texts(served: dict, sender: str) -> list[str]:
    """The user texts of ``sender``'s conversation, from Rasa's HTTP API."""
    query = f"?token={urllib.parse.quote(served['token'])}" if served.get("token") else ""
    url = f"{served['url']}/conversations/{urllib.parse.quote(sender)}/tracker{query}"
    with urllib.request.urlopen(url, timeout=30) as response:
        tracker = json.loads(response.read())
    return [event.get("text") for event in tracker["events"] if event["event"] == "user"]


def test_conversation_in_the_browser(served: dict, page: Page) -> None:
    try:
        converse(served, page)
    except AssertionError:
        log = Path(served.get("work", "")) / "rasa.log"
        if log.is_file():
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            lines = log.read_text(errors="replace").splitlines()[-400:]
            (ARTIFACTS / "rasa.log").write_text("\n".join(lines) + "\n")
        raise


def converse(served: dict, page: Page) -> None:
    page.goto(served["url"] + PAGE)
    expect(page).to_have_title("Shopwise assistant")
    expect(page.get_by_role("heading", level=1)).to_have_text("Shopwise assistant")
    expect(page.locator("#messages")).to_have_attribute("aria-live", "polite")
    expect_connected(page)

    send(page, "where is my order 12345?")
    expect(bot_answer(page, "Order 12345")).to_contain_text("shipped")
    shot(page, "1-order-status")

    send(page, "I want to cancel order 48213")
    question = bot_answer(page, "cancel order 48213")
    yes = question.get_by_role("button", name="Yes, cancel it")
    no = question.get_by_role("button", name="No, keep it")
    expect(yes).to_be_enabled()
    shot(page, "2-cancel-question")
    no.click()
    expect(page.locator(".message--user").last).to_have_text("No, keep it")
    expect(yes).to_be_disabled()
    expect(no).to_be_disabled()
    expect(no).to_have_attribute("aria-pressed", "true")
    bot_answer(page, "stays as it is")
    settle(page)
    shot(page, "3-kept")

    session_id = page.evaluate(f"localStorage.getItem('{SESSION_KEY}')")
    assert session_id
    shown = page.locator("#messages > li").all_inner_texts()
    page.reload()
    expect(page.locator("#messages > li")).to_have_count(len(shown))
    assert page.locator("#messages > li").all_inner_texts() == shown
    expect(page.get_by_role("button", name="No, keep it")).to_be_disabled()
    expect_connected(page)
    assert page.evaluate(f"localStorage.getItem('{SESSION_KEY}')") == session_id

    answers = bot_messages(page).count()
    send(page, "thanks")
    page.wait_for_function("n => document.querySelectorAll('#messages .message--bot').length > n",
                           arg=answers, timeout=ANSWER_MS)
    shot(page, "4-after-reload")
    # One conversation in Rasa's tracker store: the reload continued the session.
    texts = tracker_texts(served, session_id)
    assert texts[0] == "where is my order 12345?", texts
    assert "/deny" in texts and texts[-1] == "thanks", texts


# -- reconnection, against a stand-in server ----------------------------------------------


def serve_stub(port: int) -> None:
    """Serves the web chat channel on ``port`` with an echoing stand-in for the agent.

    ``slow`` is answered after two seconds; ``/buttons`` with two buttons.
    """
    import asyncio

    from rasa.core.channels.channel import UserMessage
    from sanic import Sanic

    from bot.webchat import WebChatInput

    async def echo(message: UserMessage) -> None:
        output = message.output_channel
        if message.text == "slow":
            await asyncio.sleep(2)
        if message.text == "/buttons":
            await output.send_text_with_buttons(
                message.sender_id, "Which one?",
                [{"title": "First", "payload": "/first"},
                 {"title": "Second", "payload": "/second"}])
        else:
            await output.send_text_message(message.sender_id, f"echo: {message.text}")

    app = Sanic("webchat_stub")
    app.blueprint(WebChatInput(title="Stub").blueprint(echo), url_prefix="/webhooks/webchat")
    app.run(host="127.0.0.1", port=port, access_log=False, motd=False)


class Stub:
    """The stand-in server as a subprocess that can be stopped and started again."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        code = f"from tests.bot.test_webchat_browser import serve_stub; serve_stub({self.port})"
        with self.log.open("a") as log:
            self.process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(self.url + PAGE, timeout=5):
                    return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"the stand-in server did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[Stub]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Stub(port, tmp_path / "stub.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_typing_indicator_buttons_and_reconnection(stub: Stub, page: Page) -> None:
    page.goto(stub.url + PAGE)
    expect_connected(page, timeout=20_000)

    send(page, "slow")
    expect(page.locator("#typing")).to_be_visible()
    expect(bot_messages(page).last).to_have_text("echo: slow", timeout=10_000)
    expect(page.locator("#typing")).to_be_hidden()

    send(page, "/buttons")
    expect(page.get_by_role("button", name="Second")).to_be_enabled(timeout=10_000)
    page.get_by_role("button", name="Second").click()
    expect(page.locator(".message--user").last).to_have_text("Second")
    expect(bot_messages(page).last).to_have_text("echo: /second", timeout=10_000)
    expect(page.get_by_role("button", name="First")).to_be_disabled()

    stub.stop()
    expect(page.locator("#status")).to_have_attribute(
        "data-state", re.compile("reconnecting|disconnected"), timeout=20_000)
    shot(page, "5-server-down")
    send(page, "sent while the server was down")  # queued until the session is back
    stub.start()
    expect_connected(page, timeout=30_000)
    expect(bot_messages(page).last).to_have_text("echo: sent while the server was down",
                                                 timeout=10_000)
    send(page, "after the restart")
    expect(bot_messages(page).last).to_have_text("echo: after the restart", timeout=10_000)
    shot(page, "6-reconnected")
