"""The hand-over ends, end to end: the real model, `rasa run --enable-api` and the
action server (actions/handoff.py, actions/session.py).

Four ways out: the ticket closed through Rasa's JWT-protected
``POST /conversations/<sender>/trigger_intent``, no colleague's reply within
``HANDOFF_TIMEOUT_S`` (a Rasa reminder), the customer going back to the bot, and
a new session. The servers are this module's own, the action server with a
short ``HANDOFF_TIMEOUT_S``; the trained model is the session's
(tests/conftest.py).

Slow: trains the assistant when no other test of the session has.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from cs_core.api_auth import bearer_headers
from tests.served import (
    BIN,
    ENV,
    ROOT,
    api,
    api_secret,
    endpoints_file,
    free_port,
    get,
    post,
    start_rasa,
    stop,
    wait_until_up,
)

pytestmark = pytest.mark.slow

# Long enough for the other tests' conversations to end their hand-over another
# way first (each asserts which way it was), short enough to wait for.
TIMEOUT_S = 20
REFERENCE = re.compile(r"\bT-[0-9A-F]{8}\b")
RELEASED_BY_CLOSE = "Our colleague has closed your ticket"
RELEASED_BY_TIMEOUT = "No colleague has been able to reply yet"
PENDING = "I've added your message for them"


@pytest.fixture(scope="module")
def served(assistant_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Both servers on free localhost ports, the action server with HANDOFF_TIMEOUT_S."""
    work = tmp_path_factory.mktemp("handoff-served")
    rasa_port, actions_port = free_port(), free_port()
    jwt_secret = api_secret()
    shop, tracker_db = work / "shop.db", work / "tracker.db"
    actions_url = f"http://127.0.0.1:{actions_port}/webhook"
    endpoints = endpoints_file(work / "endpoints.yml", actions_url, tracker_db)
    with (work / "actions.log").open("a") as log:
        actions = subprocess.Popen(
            [str(BIN / "python"), "-m", "actions", "--port", str(actions_port)], cwd=ROOT,
            stdout=log, stderr=subprocess.STDOUT,
            env=ENV | {"SANIC_HOST": "127.0.0.1", "RASA_JWT_SECRET": jwt_secret,
                       "RASA_URL": f"http://127.0.0.1:{rasa_port}",
                       "SHOP_DATABASE_URL": f"sqlite+aiosqlite:///{shop}",
                       "HANDOFF_TIMEOUT_S": str(TIMEOUT_S)})
    processes = [actions, start_rasa(assistant_model, rasa_port, endpoints, jwt_secret,
                                     work / "rasa.log")]
    try:
        wait_until_up(f"http://127.0.0.1:{actions_port}/health", processes)
        wait_until_up(f"http://127.0.0.1:{rasa_port}/", processes)
        yield {"url": f"http://127.0.0.1:{rasa_port}", "jwt_secret": jwt_secret, "shop": shop,
               "tracker_db": tracker_db, "work": work}
    finally:
        stop(*processes)


def say(served: dict, sender: str, message: str) -> str:
    """One message through the REST channel; the bot's answers joined."""
    replies = post(served["url"] + "/webhooks/rest/webhook", {"sender": sender,
                                                             "message": message})
    return " ".join(reply.get("text", "") for reply in replies)


def hand_over(served: dict, sender: str, message: str = "I want to talk to a human") -> str:
    """Asks for a human; returns the ticket's reference."""
    answer = say(served, sender, message)
    found = REFERENCE.search(answer)
    assert found, answer
    return found.group(0)


def conversation(sender: str) -> str:
    """The Rasa sender id of a REST sender (bot/rest.py namespaces it), for a URL path:
    as it is, since Rasa 3.6's routes do not percent-decode it (Sanic's default)."""
    return f"rest:{sender}"


def close_ticket(served: dict, sender: str, reference: str,
                 headers: dict[str, str] | None = None) -> dict:
    """The ticket system's call (README): trigger_intent with a Bearer token."""
    url = (f"{served['url']}/conversations/{conversation(sender)}/trigger_intent"
           f"?output_channel=latest")
    return post(url, {"name": "EXTERNAL_ticket_closed",
                      "entities": {"ticket_reference": reference}},
                api(served) if headers is None else headers)


def tracker(served: dict, sender: str) -> dict:
    return json.loads(get(f"{served['url']}/conversations/{conversation(sender)}/tracker",
                          api(served)))


def bot_texts(state: dict) -> list[str]:
    return [event.get("text") or "" for event in state["events"] if event["event"] == "bot"]


def ticket_status(served: dict, reference: str) -> str:
    with sqlite3.connect(served["shop"]) as database:
        [(status,)] = database.execute("SELECT status FROM tickets WHERE reference = ?",
                                       (reference,)).fetchall()
    return status


def test_closing_the_ticket_through_the_api_gives_self_service_back(served: dict) -> None:
    sender = "release-by-api"
    reference = hand_over(served, sender)
    assert PENDING in say(served, sender, "hello? anyone there?")

    closed = close_ticket(served, sender, reference)

    [message] = closed["messages"]
    assert message["text"] == (f"{RELEASED_BY_CLOSE} {reference}; I'm here again if you need "
                               "anything.")
    assert closed["tracker"]["slots"]["handoff"] is False
    assert ticket_status(served, reference) == "closed"
    assert say(served, sender, "hi").startswith("Hi! I'm the Shopwise assistant")
    assert not any(RELEASED_BY_TIMEOUT in text for text in bot_texts(tracker(served, sender)))


@pytest.mark.parametrize("kind", ["absent", "forged", "another conversation's"])
def test_closing_a_ticket_needs_an_admin_token(served: dict, kind: str) -> None:
    sender = f"release-no-token-{kind.split()[0]}"
    reference = hand_over(served, sender)
    headers = {"absent": {}, "forged": bearer_headers("f" * 40, username="x"),
               "another conversation's": api(served, username="rest:other", role="user")}

    with pytest.raises(urllib.error.HTTPError) as error:
        close_ticket(served, sender, reference, headers[kind])

    error.value.close()
    assert error.value.code == (403 if kind == "another conversation's" else 401)
    assert ticket_status(served, reference) == "open"
    assert PENDING in say(served, sender, "still there?")


def test_a_ticket_of_another_conversation_is_not_closed(served: dict) -> None:
    alice, mallory = "release-alice", "release-mallory"
    alices = hand_over(served, alice)
    mallorys = hand_over(served, mallory)

    refused = close_ticket(served, mallory, alices)

    assert refused["messages"] == []
    assert refused["tracker"]["slots"]["handoff"] is True
    assert (ticket_status(served, alices), ticket_status(served, mallorys)) == ("open", "open")
    assert PENDING in say(served, alice, "any news?")
    assert PENDING in say(served, mallory, "any news?")
    log = (served["work"] / "actions.log").read_text(errors="replace")
    assert f"refused to close ticket '{alices}' from conversation rest:{mallory}" in log


def test_the_customer_cannot_close_the_ticket_with_a_payload(served: dict) -> None:
    sender = "release-forged"
    reference = hand_over(served, sender)

    answer = say(served, sender, f'/EXTERNAL_ticket_closed{{"ticket_reference": "{reference}"}}')

    assert PENDING in answer
    assert ticket_status(served, reference) == "open"
    assert tracker(served, sender)["slots"]["handoff"] is True


def test_the_customer_goes_back_to_the_bot(served: dict) -> None:
    sender = "release-by-customer"
    reference = hand_over(served, sender, "can I speak to a real person")

    # Not a training example: the understanding generalises.
    back = say(served, sender, "never mind the human, I'll keep chatting with you")

    assert back.startswith("Alright, you're back with me.") and reference in back
    assert ticket_status(served, reference) == "open"
    assert "yoga mat" in say(served, sender, "is the yoga mat in stock?")


def test_a_new_session_gives_self_service_back(served: dict) -> None:
    sender = "release-by-session"
    assert "yoga mat" in say(served, sender, "do you have the yoga mat in stock?")
    reference = hand_over(served, sender)
    assert PENDING in say(served, sender, "hello?")
    # Two hours pass (domain.yml: sessions expire after 60 minutes).
    with sqlite3.connect(served["tracker_db"]) as database:
        shifted = database.execute(
            "UPDATE events SET timestamp = timestamp - 7200, data = json_set(data, "
            "'$.timestamp', json_extract(data, '$.timestamp') - 7200) WHERE sender_id = ?",
            (f"rest:{sender}",))
    assert shifted.rowcount > 0

    greeting = say(served, sender, "hi")

    assert greeting.startswith("Hi! I'm the Shopwise assistant"), greeting
    state = tracker(served, sender)
    assert any(event["event"] == "session_started" for event in state["events"])
    slots = state["slots"]
    assert (slots["handoff"], slots["ticket"], slots["product"]) == (False, reference,
                                                                   "yoga mat")
    assert ticket_status(served, reference) == "open"


def test_no_reply_in_time_gives_self_service_back(served: dict) -> None:
    sender = "release-by-timeout"
    handed = say(served, sender, "I want to talk to a human")
    reference = REFERENCE.search(handed).group(0)
    assert f"If nobody can reply within {TIMEOUT_S} seconds, I'll tell you" in handed
    # The customer's messages do not stop the reminder (kill_on_user_message=False).
    assert PENDING in say(served, sender, "is anybody there?")

    deadline = time.monotonic() + TIMEOUT_S + 60
    while time.monotonic() < deadline:
        state = tracker(served, sender)
        if state["slots"]["handoff"] is False:
            break
        time.sleep(1)

    assert state["slots"]["handoff"] is False
    said = bot_texts(state)[-1]
    assert said.startswith(RELEASED_BY_TIMEOUT) and f"ticket {reference} stays open" in said
    assert ticket_status(served, reference) == "open"
    assert say(served, sender, "what do you charge for postage?").startswith(
        "Standard shipping")
