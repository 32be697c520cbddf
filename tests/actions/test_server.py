"""The real action server (`python -m actions`) on a free localhost port, over HTTP."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import urllib.error
from collections.abc import Iterator

import pytest

from tests.served import BIN, ENV, ROOT, free_port, post, wait_until_up


@pytest.fixture(scope="module")
def action_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("action-server")
    port = free_port()
    database = work / "shop.db"
    log = (work / "actions.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "python"), "-m", "actions", "--port", str(port)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env=ENV | {"SANIC_HOST": "127.0.0.1",
                   "SHOP_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                   # Nothing listens here: complaint routing must fail gracefully.
                   "RASA_URL": f"http://127.0.0.1:{free_port()}", "RASA_PARSE_TIMEOUT": "1"})
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", [process], seconds=120)
        yield {"url": f"http://127.0.0.1:{port}/webhook", "database": database,
               "log": work / "actions.log"}
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def request(action: str, slots: dict, text: str = "", intent: str = "order_status",
            events: list | None = None, sender: str = "http-test") -> dict:
    return {"next_action": action, "sender_id": sender, "version": "3.6.21",
            "domain": {"responses": {}},
            "tracker": {"sender_id": sender, "slots": slots, "events": events or [],
                        "latest_message": {"text": text, "intent": {"name": intent},
                                           "entities": []},
                        "paused": False, "followup_action": None, "active_loop": {},
                        "latest_action_name": "action_listen"}}


def test_order_status_over_http(action_server) -> None:
    answer = post(action_server["url"], request(
        "action_handle_order_request", {"order_id": "12345", "order_request": "order_status",
                                        "verified_orders": {"12345": "C-001"}}))

    assert "Order 12345" in answer["responses"][0]["text"]
    assert "shipped with DHL" in answer["responses"][0]["text"]


def test_faq_over_http(action_server) -> None:
    answer = post(action_server["url"], request(
        "action_answer_faq", {}, text="what does delivery cost", intent="faq"))

    assert answer["responses"][0]["text"].startswith("Standard shipping costs")


def test_complaint_is_kept_when_the_rasa_server_is_down(action_server) -> None:
    description = "my coffee maker from order 55120 arrived broken"
    answer = post(action_server["url"], request(
        "action_file_complaint", {"complaint_description": description}, intent="complaint"))

    reference = next(e["value"] for e in answer["events"] if e.get("name") == "ticket")
    with sqlite3.connect(action_server["database"]) as database:
        row = database.execute("SELECT department, routed, description FROM tickets "
                               "WHERE reference = ?", (reference,)).fetchone()
    assert row == ("unrouted", 0, description)
    assert reference in answer["responses"][0]["text"]


def test_unknown_action_is_a_clean_404(action_server) -> None:
    with pytest.raises(urllib.error.HTTPError) as error:
        post(action_server["url"], request("action_does_not_exist", {}))

    with error.value:  # the error holds the response's socket
        body = json.loads(error.value.read())
    assert error.value.code == 404
    assert "action_does_not_exist" in body["error"]


def test_the_action_servers_log_masks_personal_data(action_server) -> None:
    # The start-up hook of `python -m actions` masks every log record: the
    # complaint's routing fails (no Rasa server) and is logged with the sender id.
    sender = "jo.bloggs@example.com card 4111 1111 1111 1111"
    post(action_server["url"], request(
        "action_file_complaint", {"complaint_description": "the kettle leaks"},
        intent="complaint", sender=sender))

    log = action_server["log"].read_text()
    assert "not routed" in log
    assert "jo.bloggs@example.com" not in log and "4111 1111" not in log
    assert "<email> card <card>" in log
