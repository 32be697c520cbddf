"""The assistant end to end: data validation, `rasa train`, conversation test
stories with `rasa test`, and the served HTTP API with the action server.

Slow (a few minutes on 2 cores): trains the real assistant with the packaged MiniLM.
The trained model and the servers come from tests/served.py via tests/conftest.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.served import BIN, post, run, tail

pytestmark = pytest.mark.slow


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
    parsed = post(served["url"] + "/model/parse", {"text": "where is my order 12345?"})

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
    parsed = post(served["url"] + "/model/parse", {"text": text})

    assert parsed["sentiment"]["label"] == label, parsed["sentiment"]


def test_rest_conversation_for_order_status(served: dict) -> None:
    webhook = served["url"] + "/webhooks/rest/webhook"
    sender = "order-status-test"

    greeting = post(webhook, {"sender": sender, "message": "hi"})
    asked = post(webhook, {"sender": sender, "message": "what's the status of my order?"})
    answered = post(webhook, {"sender": sender, "message": "it's 12345"})

    assert "Shopwise assistant" in greeting[0]["text"]
    assert "order number" in asked[-1]["text"]
    assert "Order 12345" in answered[-1]["text"] and "shipped" in answered[-1]["text"]
    with sqlite3.connect(served["database"]) as database:
        texts = [json.loads(row[0]).get("text") for row in database.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'", (sender,))]
    assert texts == ["hi", "what's the status of my order?", "it's 12345"]
