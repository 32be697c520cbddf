"""The assistant end to end: data validation, `rasa train`, conversation test
stories with `rasa test`, and the served HTTP API with the action server.

Slow (a few minutes on 2 cores): trains the real assistant with the packaged MiniLM.
The trained model and the servers come from tests/served.py via tests/conftest.py.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
from pathlib import Path

import pytest

from cs_core.api_auth import bearer_headers
from tests.served import BIN, api, get, post, run, tail

pytestmark = pytest.mark.slow


def parse(served: dict, text: str) -> dict:
    """``/model/parse`` with a Bearer token, as the action server calls it."""
    return post(served["url"] + "/model/parse", {"text": text}, api(served))


def chat(served: dict, sender: str, *messages: str) -> list[str]:
    """Sends messages through the REST channel; returns the bot's last answer to each."""
    answers = []
    for message in messages:
        replies = post(served["url"] + "/webhooks/rest/webhook",
                       {"sender": sender, "message": message})
        answers.append(" ".join(reply.get("text", "") for reply in replies))
    return answers


def query(database: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql, params).fetchall()


def test_training_data_is_consistent() -> None:
    validated = run(str(BIN / "rasa"), "data", "validate", "--fail-on-warnings",
                    "--data", "data", "--domain", "domain.yml", "--config", "config.yml")

    assert validated.returncode == 0, tail(validated)


def test_conversation_stories_pass(assistant_model: Path, tmp_path: Path) -> None:
    tested = run(str(BIN / "rasa"), "test", "core", "--stories", "tests/stories",
                 "--model", str(assistant_model), "--out", str(tmp_path),
                 "--fail-on-prediction-errors")

    failed = tmp_path / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else tail(tested)
    assert tested.returncode == 0, details


def test_model_parse_gives_intent_order_number_and_sentiment(served: dict) -> None:
    parsed = parse(served, "where is my order 12345?")

    assert parsed["intent"]["name"] == "order_status", parsed["intent"]
    assert [(e["entity"], e["value"]) for e in parsed["entities"]] == [("order_id", "12345")]
    sentiment = parsed["sentiment"]
    assert sentiment["label"] in {"negative", "neutral", "positive"}
    assert set(sentiment["scores"]) == {"negative", "neutral", "positive"}
    assert parsed["intent_ranking"][0]["name"] == "order_status"


@pytest.mark.parametrize(
    ("text", "label"),
    [("this is the worst service ever, I am furious", "negative"),
     ("thank you so much, you were really helpful!", "positive")],
)
def test_sentiment_of_clear_cases(served: dict, text: str, label: str) -> None:
    parsed = parse(served, text)

    assert parsed["sentiment"]["label"] == label, parsed["sentiment"]


def test_rest_conversation_for_order_status(served: dict) -> None:
    webhook = served["url"] + "/webhooks/rest/webhook"
    sender = "order-status-test"

    greeting = post(webhook, {"sender": sender, "message": "hi"})
    asked = post(webhook, {"sender": sender, "message": "what's the status of my order?"})
    proof = post(webhook, {"sender": sender, "message": "it's 12345"})
    answered = post(webhook, {"sender": sender, "message": "alex@example.com"})

    assert "Shopwise assistant" in greeting[0]["text"]
    assert "order number" in asked[-1]["text"]
    # An anonymous customer proves the order is theirs before hearing anything of it.
    assert "e-mail address on order 12345" in proof[-1]["text"]
    assert "Order 12345" in answered[-1]["text"] and "shipped" in answered[-1]["text"]
    with sqlite3.connect(served["database"]) as database:
        texts = [json.loads(row[0]).get("text") for row in database.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'",
            (f"rest:{sender}",))]
    assert texts == ["hi", "what's the status of my order?", "it's 12345", "alex@example.com"]
    # Nothing but the asked-for answers: no ticket, no hand-over on the way.
    assert query(served["shop"], "SELECT COUNT(*) FROM tickets WHERE sender_id = ?",
                 f"rest:{sender}") == [(0,)]


def forged(served: dict) -> dict[str, str]:
    return bearer_headers("not-the-servers-secret-0123456789abcdef")


def expired(served: dict) -> dict[str, str]:
    return api(served, now=time.time() - 3600, ttl_s=60)


def static_token(served: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {served['jwt_secret']}"}  # the secret is not a token


@pytest.mark.parametrize("headers", [lambda served: {}, forged, expired, static_token],
                         ids=["absent", "forged", "expired", "secret as token"])
def test_http_api_refuses_requests_without_a_valid_bearer_token(served: dict, headers) -> None:
    with pytest.raises(urllib.error.HTTPError) as error:
        post(served["url"] + "/model/parse", {"text": "hi"}, headers(served))

    error.value.close()  # the error holds the response's socket
    assert error.value.code == 401


def test_a_conversation_token_reaches_its_own_conversation_only(served: dict) -> None:
    chat(served, "scoped-test", "hi")
    own = api(served, username="rest:scoped-test", role="user")

    tracker = json.loads(get(served["url"] + "/conversations/rest:scoped-test/tracker", own))
    with pytest.raises(urllib.error.HTTPError) as error:
        get(served["url"] + "/conversations/rest:someone-else/tracker", own)

    error.value.close()
    assert tracker["sender_id"] == "rest:scoped-test" and error.value.code == 403


def test_a_static_token_in_the_url_is_not_accepted(served: dict) -> None:
    with pytest.raises(urllib.error.HTTPError) as error:
        post(served["url"] + "/model/parse?token=" + served["jwt_secret"], {"text": "hi"})

    error.value.close()
    assert error.value.code == 401


def test_cancelling_an_order_asks_first_and_updates_the_database(served: dict) -> None:
    proof, asked, done = chat(served, "cancel-test", "please cancel my order 36402",
                              "sam@example.com", "yes")

    assert "e-mail address on order 36402" in proof
    assert "really want to cancel order 36402" in asked
    assert "order 36402 is cancelled" in done
    assert query(served["shop"], "SELECT status FROM orders WHERE order_id = '36402'") == [
        ("cancelled",)]


def test_shipped_orders_are_not_cancelled(served: dict) -> None:
    _, answer = chat(served, "cancel-shipped-test", "I want to cancel order 12345", "M14 5RT")

    assert "already shipped and can't be cancelled" in answer


def test_faq_in_new_words_is_answered_from_the_knowledge_base(served: dict) -> None:
    [answer] = chat(served, "faq-test", "what do you charge for postage?")

    assert answer.startswith("Standard shipping costs 4.95")


def test_three_angry_turns_escalate_with_a_ticket(served: dict) -> None:
    sender = "angry-test"
    # Clearly unhappy, not furious: the several-turns rule, not the single-turn one.
    answers = chat(served, sender,
                   "where is my order 12345? it's two weeks late, I'm disappointed",
                   "alex@example.com",
                   "I'm really disappointed, please track it",
                   "what is the status of my order, I'm really disappointed",
                   "I'm really disappointed, where is it now?",
                   "hello? anyone there?")
    answers = answers[1:]  # after the proof of ownership

    assert "Order 12345" in answers[0] and "JD014600006281" in answers[1]
    [(reference, reason, priority, history)] = query(
        served["shop"], "SELECT reference, reason, priority, sentiment_history "
        "FROM tickets WHERE sender_id = ?", f"rest:{sender}")
    assert reference in answers[3] and reason == "persistently_negative"
    assert priority == "high"
    labels = [turn["label"] for turn in json.loads(history)]
    assert labels[-3:] == ["negative"] * 3
    texts = [text for (text,) in query(
        served["shop"], "SELECT text FROM ticket_messages WHERE reference = ? ORDER BY id",
        reference)]
    assert texts[0] == "where is my order 12345? it's two weeks late, I'm disappointed"
    assert "e-mail address on order 12345" in texts[1]  # the bot's side is there too
    # After the hand-over the bot stops self-serving and keeps messages for the human.
    assert texts[-1] == "hello? anyone there?"
    assert reference in answers[4]


def test_complaint_is_routed_through_model_parse(served: dict) -> None:
    sender = "complaint-test"
    asked, filed = chat(served, sender, "I want to make a complaint",
                        "the coffee maker from order 55120 leaks water everywhere")

    assert "what went wrong" in asked
    [(reference, department, routed, order_id)] = query(
        served["shop"], "SELECT reference, department, routed, order_id FROM tickets "
        "WHERE sender_id = ?", f"rest:{sender}")
    assert reference in filed
    assert routed == 1 and department != "unrouted"
    assert order_id == "55120"


def test_the_api_secret_never_reaches_the_logs(served: dict) -> None:
    # After this module's conversations and API calls (tests run in file order).
    parse(served, "my email is jane.doe@example.com")

    for name in ("rasa.log", "actions.log"):
        log = (served["work"] / name).read_text(errors="replace")
        assert served["jwt_secret"] not in log, name


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of TCP sockets listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hexport = local.rpartition(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_both_servers_listen_on_localhost_only(served: dict) -> None:
    # The servers are started as bot/run.sh starts them: `rasa run --interface
    # 127.0.0.1` and the action server with SANIC_HOST=127.0.0.1.
    ports = [int(served["url"].rsplit(":", 1)[1]),
             int(served["actions_url"].split(":")[2].split("/")[0])]
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux's /proc/net/tcp")

    for port in ports:
        assert _listening_addresses(port) == {"0100007F"}, port  # 127.0.0.1 only
    launcher = (Path(__file__).resolve().parents[1] / "bot" / "run.sh").read_text()
    assert "SANIC_HOST=127.0.0.1" in launcher and "--interface 127.0.0.1" in launcher
