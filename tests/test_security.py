"""The trust boundary, attacked through the real servers (REST channel, shop database).

Each test is one attack from the security review, and shows that it is refused;
the legitimate flow next to it still works. The socket.io attacks (forged,
expired or absent customer tokens, guessed session ids, foreign origins) are in
``tests/bot/test_webchat_security.py`` and the browser test; client-sent
identities in ``tests/test_security_channels.py``; the unit-level proofs of
ownership in ``tests/actions/test_ownership.py``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from actions.forms import LOCKED_TEXT, NO_MATCH_TEXT
from tests.test_assistant import chat, query


def order_status(served: dict, order_id: str) -> str:
    [(status,)] = query(served["shop"], "SELECT status FROM orders WHERE order_id = ?",
                        order_id)
    return status


def test_a_foreign_order_is_refused_by_its_number(served: dict) -> None:
    # 48213 is Sam's; the attacker knows the number and Alex's e-mail, not Sam's.
    asked, refused = chat(served, "attack-foreign-order", "cancel order 48213",
                          "alex@example.com")

    assert "e-mail address on order 48213" in asked
    assert NO_MATCH_TEXT.format(order_id="48213") in refused
    assert "is cancelled" not in refused
    assert order_status(served, "48213") == "processing"


def test_no_such_order_and_not_your_order_look_the_same(served: dict) -> None:
    _, missing = chat(served, "attack-oracle-1", "where is my order 77777", "alex@example.com")
    _, foreign = chat(served, "attack-oracle-2", "where is my order 48213", "alex@example.com")

    assert missing.replace("77777", "#") == foreign.replace("48213", "#")


def test_wrong_e_mails_are_rate_limited(served: dict) -> None:
    sender = "attack-guessing"
    answers = []
    for attempt in range(5):
        answers += chat(served, sender, "where is my order 90871", f"guess{attempt}@example.com")

    assert LOCKED_TEXT.format(minutes=15) in answers[-1]
    # Locked: the right e-mail is refused too, for this conversation and this order.
    _, after = chat(served, sender, "where is my order 90871", "alex@example.com")
    assert "Order 90871" not in after
    elsewhere, _ = chat(served, "attack-guessing-2", "where is my order 90871",
                        "alex@example.com")
    assert LOCKED_TEXT.format(minutes=15) in elsewhere


def test_the_owner_proves_the_order_and_is_served(served: dict) -> None:
    asked, answered = chat(served, "owner-proof", "where is my order 55120", "t12 x8p2")

    assert "postcode" in asked
    assert "Order 55120" in answered and "delivered" in answered


def post_raw(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def test_a_cross_site_form_post_to_the_rest_webhook_is_refused(served: dict) -> None:
    url = served["url"] + "/webhooks/rest/webhook"
    body = json.dumps({"sender": "csrf", "message": "cancel order 36402"}).encode()

    # What a form or no-cors fetch on another site can send, without a CORS preflight.
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"):
        assert post_raw(url, body, content_type) == 415, content_type
    assert post_raw(url, body, "application/json") == 200


def test_a_rest_sender_cannot_reach_another_channels_conversation(served: dict) -> None:
    victim = "webchat:0123456789abcdef0123456789abcdef"
    chat(served, victim, "hi")

    senders = {sender for (sender,) in query(
        served["database"], "SELECT DISTINCT sender_id FROM events WHERE sender_id LIKE ?",
        "%0123456789abcdef0123456789abcdef")}
    assert senders == {f"rest:{victim}"}
