"""The assistant end to end: data validation, `rasa train`, conversation test
stories with `rasa test`, and the served HTTP API with the action server.

Slow (a few minutes on 2 cores): trains the real assistant with the packaged MiniLM.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SENTIMENT_MODEL = ROOT / "models" / "sentiment"
ENV = os.environ | {"RASA_TELEMETRY_ENABLED": "false", "HF_HUB_OFFLINE": "1",
                    "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

pytestmark = pytest.mark.slow


def run(*args: str, timeout: int = 1200, **kwargs) -> subprocess.CompletedProcess:
    """Runs a command in the project directory; output is kept for failure messages."""
    return subprocess.run(list(args), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def tail(process: subprocess.CompletedProcess, lines: int = 40) -> str:
    return "\n".join((process.stdout + process.stderr).splitlines()[-lines:])


@pytest.fixture(scope="module")
def assistant_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make run`'s training steps: the default sentiment model, then `rasa train`."""
    if not (SENTIMENT_MODEL / "classifier.json").is_file():
        trained = run(str(BIN / "python"), "-m", "training", "sentiment", "--data",
                      "data/sentiment/customer_service.csv", "--output", str(SENTIMENT_MODEL),
                      "--overwrite", "--epochs", "8")
        assert trained.returncode == 0, tail(trained)
    out = tmp_path_factory.mktemp("rasa-model")
    trained = run(str(BIN / "rasa"), "train", "--fixed-model-name", "assistant", "--out",
                  str(out))
    assert trained.returncode == 0, tail(trained)
    return out / "assistant.tar.gz"


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def _post(url: str, payload: dict) -> object:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _wait_until_up(url: str, processes: list[subprocess.Popen], seconds: int = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, f"{process.args[:3]} exited during start-up"
        try:
            _get(url)
            return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not come up in {seconds} s")


@pytest.fixture(scope="module")
def served(assistant_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """`rasa run --enable-api` and the action server on free localhost ports."""
    work = tmp_path_factory.mktemp("served")
    rasa_port, actions_port = _free_port(), _free_port()
    database = work / "tracker.db"
    endpoints = work / "endpoints.yml"
    endpoints.write_text(
        f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n'
        f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{database}"\n')
    logs = [(work / name).open("w") for name in ("actions.log", "rasa.log")]
    processes = [
        subprocess.Popen([str(BIN / "rasa"), "run", "actions", "--actions", "actions",
                          "--port", str(actions_port)], cwd=ROOT,
                         env=ENV | {"SANIC_HOST": "127.0.0.1"}, stdout=logs[0],
                         stderr=subprocess.STDOUT),
        subprocess.Popen([str(BIN / "rasa"), "run", "--enable-api", "--interface", "127.0.0.1",
                          "--port", str(rasa_port), "--model", str(assistant_model),
                          "--endpoints", str(endpoints), "--credentials", "credentials.yml"],
                         cwd=ROOT, env=ENV, stdout=logs[1], stderr=subprocess.STDOUT),
    ]
    try:
        _wait_until_up(f"http://127.0.0.1:{actions_port}/health", processes)
        _wait_until_up(f"http://127.0.0.1:{rasa_port}/status", processes)
        yield {"url": f"http://127.0.0.1:{rasa_port}", "database": database, "work": work}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


def test_model_parse_gives_intent_order_number_and_sentiment(served: dict) -> None:
    parsed = _post(served["url"] + "/model/parse", {"text": "where is my order 12345?"})

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
    parsed = _post(served["url"] + "/model/parse", {"text": text})

    assert parsed["sentiment"]["label"] == label, parsed["sentiment"]


def test_rest_conversation_for_order_status(served: dict) -> None:
    webhook = served["url"] + "/webhooks/rest/webhook"
    sender = "order-status-test"

    greeting = _post(webhook, {"sender": sender, "message": "hi"})
    asked = _post(webhook, {"sender": sender, "message": "what's the status of my order?"})
    answered = _post(webhook, {"sender": sender, "message": "it's 12345"})

    assert "Shopwise assistant" in greeting[0]["text"]
    assert "order number" in asked[-1]["text"]
    assert "Order 12345" in answered[-1]["text"] and "shipped" in answered[-1]["text"]
    with sqlite3.connect(served["database"]) as database:
        texts = [json.loads(row[0]).get("text") for row in database.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'", (sender,))]
    assert texts == ["hi", "what's the status of my order?", "it's 12345"]
