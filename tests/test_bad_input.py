"""Untrusted input on the served REST channel: never a 500, and the next message works.

Slow: uses the served assistant (tests/served.py).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def send(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def message(sender: str, text: str) -> bytes:
    return json.dumps({"sender": sender, "message": text}).encode()


BAD_BODIES = {
    "empty text": message("bad-empty", ""),
    "only whitespace": message("bad-space", "  \t\n "),
    "100k characters": message("bad-long", "where is my order " * 5_600),
    "control characters and NUL": message("bad-control", "hi\x00\x01\x1b[31m\x7f"),
    "invalid UTF-8": b'{"sender": "bad-utf8", "message": "\xff\xfe\xfd"}',
    "emoji and right-to-left": message("bad-rtl", "😡😡 أين طلبي؟ שלום"),
    "Chinese": message("bad-zh", "我的订单 12345 在哪里？"),
    "malformed JSON": b'{"sender": "bad-json", "message": ',
    "JSON list": b'["sender", "message"]',
    "message of the wrong type": b'{"sender": "bad-type", "message": 12345}',
    "sender of the wrong type": b'{"sender": {"id": 1}, "message": "hi"}',
    "missing sender id": b'{"message": "hi"}',
    "SQL in an order number": message("bad-sql", "where is my order 12345' OR '1'='1"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_input_gets_an_answer_or_a_clean_4xx(served: dict, case: str) -> None:
    url = served["url"] + "/webhooks/rest/webhook"

    status, body = send(url, BAD_BODIES[case])
    after, answer = send(url, message(f"after-{case}", "hi"))

    assert status < 500, (status, body[:300])
    assert after == 200 and json.loads(answer), answer[:300]


def test_a_10k_character_address_is_refused_politely(served: dict) -> None:
    url = served["url"] + "/webhooks/rest/webhook"
    sender = "bad-address"
    send(url, message(sender, "I want to change the delivery address of order 48213"))
    send(url, message(sender, "LS6 2AB"))  # the postcode proves the order is theirs

    status, body = send(url, message(sender, "42 Oak Avenue " + "x" * 10_000))

    assert status == 200
    assert "full address" in " ".join(m.get("text", "") for m in json.loads(body))
