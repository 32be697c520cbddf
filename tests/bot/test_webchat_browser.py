"""The web chat page (bot/webchat/) in a real headless Chromium, driven by Playwright.

Slow: the conversation test talks to the real assistant (the session-scoped ``served``
fixture trains it and runs ``rasa run`` with credentials.yml); the other tests use a
small stand-in server that serves the page and echoes (it restarts it to test
reconnection, and frames the page in a stand-in shop to test customer tokens).

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

from tests.served import api

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
    """The user texts of ``sender``'s conversation (a Rasa sender id), from Rasa's HTTP API."""
    # Sanic 21.12 does not decode route parameters: the namespace's ":" goes as it is.
    url = f"{served['url']}/conversations/{urllib.parse.quote(sender, safe=':')}/tracker"
    request = urllib.request.Request(url, headers=api(served) if "jwt_secret" in served else {})
    with urllib.request.urlopen(request, timeout=30) as response:
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


def prove_if_asked(page: Page, order: str, postcode: str) -> None:
    """Answers the assistant's ownership question about ``order`` with ``postcode``."""
    answer = bot_messages(page).filter(has_text=f"order {order}").last
    expect(answer).to_be_visible(timeout=ANSWER_MS)
    if "e-mail address on order" in answer.inner_text():
        send(page, postcode)


def converse(served: dict, page: Page) -> None:
    page.goto(served["url"] + PAGE)
    expect(page).to_have_title("Shopwise assistant")
    expect(page.get_by_role("heading", level=1)).to_have_text("Shopwise assistant")
    expect(page.locator("#messages")).to_have_attribute("aria-live", "polite")
    expect_connected(page)

    # An anonymous chat: the assistant asks for a proof of ownership of each order
    # (actions/ownership.py); the delivery postcode is one.
    send(page, "where is my order 12345?")
    prove_if_asked(page, "12345", "M14 5RT")
    # (The wording of the order status is the actions' business: either will do.)
    expect(bot_answer(page, "Order 12345")).to_contain_text(re.compile("shipped|on its way"))
    shot(page, "1-order-status")

    send(page, "I want to cancel order 48213")
    prove_if_asked(page, "48213", "LS6 2AB")
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
    # One conversation in Rasa's tracker store: the reload continued the session. The
    # page keeps the signed session id; Rasa's sender id is its uuid, namespaced.
    from bot.webchat_session import session_sender_id

    texts = tracker_texts(served, session_sender_id(session_id))
    assert texts[0] == "where is my order 12345?", texts
    assert "/deny" in texts and texts[-1] == "thanks", texts


# -- reconnection, against a stand-in server ----------------------------------------------


STUB_SESSION_SECRET = "test-only webchat session secret, 32+ bytes long"
STUB_IDENTITY_SECRET = "test-only shop identity secret, 32+ bytes long"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_stub(port: int, shop_origin: str = "http://127.0.0.1:1") -> None:
    """Serves the web chat channel on ``port`` with an echoing stand-in for the agent.

    ``slow`` is answered after two seconds; ``/buttons`` with two buttons; ``/whoami``
    with the verified customer. The session secret is fixed, so that sessions survive
    a restart (as with WEBCHAT_SESSION_SECRET); ``shop_origin`` may frame the page.
    """
    import asyncio

    from rasa.core.channels.channel import UserMessage
    from sanic import Sanic

    from bot.webchat import IdentityPolicy, WebChatInput

    async def echo(message: UserMessage) -> None:
        output = message.output_channel
        if message.text == "slow":
            await asyncio.sleep(2)
        if message.text == "/whoami":
            identity = (message.metadata or {}).get("verified_identity") or {}
            await output.send_text_message(
                message.sender_id, f"customer: {identity.get('customer_id', 'anonymous')}")
        elif message.text == "/buttons":
            await output.send_text_with_buttons(
                message.sender_id, "Which one?",
                [{"title": "First", "payload": "/first"},
                 {"title": "Second", "payload": "/second"}])
        else:
            await output.send_text_message(message.sender_id, f"echo: {message.text}")

    app = Sanic("webchat_stub")
    webchat = WebChatInput(title="Stub", session_secret=STUB_SESSION_SECRET,
                           identity=IdentityPolicy(secret=STUB_IDENTITY_SECRET),
                           allowed_origins=[shop_origin])
    app.blueprint(webchat.blueprint(echo), url_prefix="/webhooks/webchat")
    app.run(host="127.0.0.1", port=port, access_log=False, motd=False)


class Stub:
    """The stand-in server as a subprocess that can be stopped and started again."""

    def __init__(self, port: int, log: Path, shop_origin: str) -> None:
        self.port, self.log, self.shop_origin = port, log, shop_origin
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        code = ("from tests.bot.test_webchat_browser import serve_stub; "
                f"serve_stub({self.port}, {self.shop_origin!r})")
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


class Shop:
    """A stand-in for the shop's web server on 127.0.0.1 (a real one: Chromium refuses
    to frame a loopback page in a page it did not get from a loopback address).

    Attributes:
        port: Its port.
        origin: The origin the stand-in server allows (``http://127.0.0.1:<port>``);
            ``http://localhost:<port>`` is the same server under another origin.
        body: The HTML it answers every GET with.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.body = ""


@pytest.fixture
def shop() -> Iterator[Shop]:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    stand_in = Shop(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = stand_in.body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", stand_in.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stub(tmp_path: Path, shop: Shop) -> Iterator[Stub]:
    server = Stub(free_port(), tmp_path / "stub.log", shop.origin)
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


def test_a_chinese_browser_gets_the_page_in_chinese(stub: Stub, browser: Browser) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 900, "height": 700})
    page = context.new_page()
    try:
        page.goto(stub.url + PAGE)
        expect(page.locator("#status")).to_have_text("已连接", timeout=20_000)
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.get_by_role("button", name="发送")).to_be_visible()
        expect(page.get_by_label("您的消息")).to_have_attribute("placeholder",
                                                              "输入消息，按回车发送")
        page.get_by_label("您的消息").fill("你好")
        page.get_by_label("您的消息").press("Enter")
        expect(bot_messages(page).last).to_have_text("echo: 你好", timeout=10_000)
        shot(page, "7-chinese-interface")
    finally:
        context.close()


def test_an_english_browser_keeps_the_english_page(stub: Stub, page: Page) -> None:
    page.goto(stub.url + PAGE)
    expect_connected(page, timeout=20_000)
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_a_signed_in_customer_cancels_their_order_and_not_anothers(served: dict,
                                                                   page: Page) -> None:
    """The shop signs the customer in with a token in the page; the assistant acts on
    their own order without a proof, and treats another's as any unproven order."""
    import sqlite3

    from bot.identity import make_customer_token
    from tests.served import IDENTITY_SECRET

    with sqlite3.connect(served["shop"]) as shop:  # a fresh processing order of Niamh's
        shop.execute("INSERT INTO orders (order_id, customer_id, status, address, postcode, "
                     "refund_status, updated_at) VALUES ('61000', 'C-003', 'processing', "
                     "'7 Harbour View, Cork T12 X8P2', 'T12 X8P2', 'none', '2026-11-30')")
        shop.execute("INSERT INTO order_items (order_id, position, product) "
                     "VALUES ('61000', 0, 'yoga mat')")
    token = make_customer_token("C-003", IDENTITY_SECRET, 600)
    page.add_init_script(f"window.SHOPWISE_CUSTOMER_TOKEN = {json.dumps(token)};")
    page.goto(served["url"] + PAGE)
    expect_connected(page)

    send(page, "please cancel my order 61000")
    question = bot_answer(page, "cancel order 61000")  # no proof asked: she is signed in
    question.get_by_role("button", name="Yes, cancel it").click()
    bot_answer(page, "order 61000 is cancelled")
    shot(page, "5-signed-in-cancel")

    send(page, "and cancel order 48213 too")  # Sam's order
    asked = bot_answer(page, "e-mail address on order 48213")
    send(page, "niamh@example.com")
    bot_answer(page, "doesn't match order 48213")
    shot(page, "6-signed-in-foreign-order")
    assert "e-mail address" in asked.inner_text()
    with sqlite3.connect(served["shop"]) as shop:
        statuses = dict(shop.execute(
            "SELECT order_id, status FROM orders WHERE order_id IN ('61000', '48213')"))
    assert statuses == {"61000": "cancelled", "48213": "processing"}


# -- customer tokens, against the stand-in server -----------------------------------------


def customer_token(customer_id: str = "C-001") -> str:
    from bot.identity import make_customer_token

    return make_customer_token(customer_id, STUB_IDENTITY_SECRET, 600)


def shop_page(stub: Stub, token: str | None) -> str:
    """The shop's page: frames the chat and answers its ``webchat-ready`` with ``token``."""
    return f"""<!doctype html><html><head><title>Shop</title><script>
      window.addEventListener("message", function (event) {{
        if (event.origin !== {json.dumps(stub.url)} || !event.data) return;
        if (event.data.type === "shopwise:webchat-ready" ||
            event.data.type === "shopwise:customer-token-needed") {{
          document.getElementById("chat").contentWindow.postMessage(
            {{type: "shopwise:customer-token", token: {json.dumps(token)}}},
            {json.dumps(stub.url)});
        }}
      }});
    </script></head><body>
      <iframe id="chat" title="Chat" src="{stub.url}{PAGE}" width="700" height="800"></iframe>
    </body></html>"""


def open_shop(page: Page, stub: Stub, shop: Shop, token: str | None,
              host: str = "127.0.0.1") -> None:
    shop.body = shop_page(stub, token)
    page.goto(f"http://{host}:{shop.port}/")


def test_a_token_from_the_window_names_the_customer(stub: Stub, page: Page) -> None:
    page.add_init_script(f"window.SHOPWISE_CUSTOMER_TOKEN = {json.dumps(customer_token())};")
    page.goto(stub.url + PAGE)
    expect_connected(page, timeout=20_000)

    send(page, "/whoami")
    expect(bot_messages(page).last).to_have_text("customer: C-001", timeout=10_000)
    # In memory only: neither the token nor the customer is stored in the browser.
    stored = page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert customer_token()[:40] not in stored and "C-001" not in stored.replace(
        "customer: C-001", "")


def test_the_shop_frames_the_chat_and_hands_it_the_token(stub: Stub, shop: Shop,
                                                         page: Page) -> None:
    open_shop(page, stub, shop, customer_token("C-002"))
    chat = page.frame_locator("#chat")
    expect(chat.locator("#status")).to_have_text("Connected", timeout=20_000)

    field = chat.get_by_label("Your message")
    field.fill("/whoami")
    field.press("Enter")
    expect(chat.locator("#messages .message--bot").last).to_have_text("customer: C-002",
                                                                      timeout=10_000)
    shot(page, "7-framed-by-the-shop")


def test_an_anonymous_shop_visitor_chats_anonymously(stub: Stub, shop: Shop,
                                                     page: Page) -> None:
    open_shop(page, stub, shop, None)
    chat = page.frame_locator("#chat")
    expect(chat.locator("#status")).to_have_text("Connected", timeout=20_000)

    field = chat.get_by_label("Your message")
    field.fill("/whoami")
    field.press("Enter")
    expect(chat.locator("#messages .message--bot").last).to_have_text("customer: anonymous",
                                                                      timeout=10_000)


def test_another_site_cannot_frame_the_chat(stub: Stub, shop: Shop, page: Page) -> None:
    # The same page under an origin the server does not allow.
    open_shop(page, stub, shop, customer_token(), host="localhost")
    page.wait_for_timeout(2_000)

    # frame-ancestors: the browser does not render the chat inside the foreign page.
    expect(page.frame_locator("#chat").locator("#status")).to_have_count(0)


def test_a_refused_token_is_shown_and_not_retried(stub: Stub, page: Page) -> None:
    forged = customer_token()[:-4] + "AAAA"
    page.add_init_script(f"window.SHOPWISE_CUSTOMER_TOKEN = {json.dumps(forged)};")
    page.goto(stub.url + PAGE)

    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "refused", timeout=20_000)
    expect(status).to_contain_text("could not confirm who you are")
    page.wait_for_timeout(2_000)
    expect(status).to_have_attribute("data-state", "refused")  # no reconnection loop
    assert page.evaluate("window.shopwiseWebchat.socket.connected") is False

    page.evaluate(f"window.shopwiseWebchat.setCustomerToken({json.dumps(customer_token())})")
    expect_connected(page, timeout=20_000)
    send(page, "/whoami")
    expect(bot_messages(page).last).to_have_text("customer: C-001", timeout=10_000)
