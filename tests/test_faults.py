"""Faults around the served assistant: the action server down, failing or slow,
a Rasa restart mid-conversation, and a broken model at `rasa run`.

Slow: a second Rasa server (the session's trained model) whose action calls go
through ``FlakyProxy``, in front of its own action server and shop database.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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
    start_action_server,
    start_rasa,
    stop,
    wait_until_up,
)

pytestmark = pytest.mark.slow

# domain.yml's utter_action_failed, said by ActionFailurePolicy.
FAILED = "Sorry, I couldn't finish that just now"
# config.yml's ActionFailurePolicy action_timeout.
ACTION_TIMEOUT = 20


class FlakyProxy:
    """Between Rasa and the action server: forwards, answers 500, stalls, or is down."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.mode = "forward"
        self._release = threading.Event()  # ends stalled requests at stop()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy.mode == "500":
                    self._reply(500, b"Internal Server Error")
                elif proxy.mode == "slow":
                    proxy._release.wait(ACTION_TIMEOUT * 3)
                else:
                    request = urllib.request.Request(
                        proxy.target, data=body, headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=60) as response:
                        self._reply(response.status, response.read())

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Closes the port: Rasa's calls are refused, as with a server that is down."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture(scope="module")
def faulty(assistant_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A Rasa server whose action server sits behind a ``FlakyProxy``."""
    work = tmp_path_factory.mktemp("faults")
    rasa_port, actions_port = free_port(), free_port()
    jwt_secret = api_secret()
    actions = start_action_server(actions_port, work / "shop.db", rasa_port, jwt_secret,
                                  work / "actions.log")
    proxy = FlakyProxy(f"http://127.0.0.1:{actions_port}/webhook")
    proxy.start()
    endpoints = endpoints_file(work / "endpoints.yml", proxy.url, work / "tracker.db")
    servers = {"model": assistant_model, "port": rasa_port, "endpoints": endpoints,
               "jwt_secret": jwt_secret, "log": work / "rasa.log"}
    rasa = start_rasa(assistant_model, rasa_port, endpoints, jwt_secret, servers["log"])
    state = {"url": f"http://127.0.0.1:{rasa_port}", "proxy": proxy, "rasa": rasa,
             "servers": servers, "shop": work / "shop.db"}
    try:
        wait_until_up(f"http://127.0.0.1:{actions_port}/health", [actions, rasa])
        wait_until_up(state["url"] + "/", [actions, rasa])
        yield state
    finally:
        proxy.stop()
        stop(actions, state["rasa"])


def say(faulty: dict, sender: str, message: str) -> str:
    replies = post(faulty["url"] + "/webhooks/rest/webhook",
                   {"sender": sender, "message": message})
    return " ".join(reply.get("text", "") for reply in replies)


def user_texts(faulty: dict, sender: str) -> list[str]:
    # REST conversations are namespaced (bot/trust.py); Sanic wants the ":" unencoded.
    tracker = json.loads(get(f"{faulty['url']}/conversations/rest:{sender}/tracker",
                             api(faulty["servers"])))
    return [event["text"] for event in tracker["events"] if event["event"] == "user"]


def test_action_server_faults_get_an_answer_and_the_conversation_goes_on(faulty: dict) -> None:
    proxy, sender, question = faulty["proxy"], "faults-test", "where is my order 12345?"
    # Proved once (actions/ownership.py), the order is this conversation's from then on.
    assert "e-mail address on order 12345" in say(faulty, sender, question)
    assert "shipped" in say(faulty, sender, "alex@example.com")

    proxy.mode = "500"
    assert FAILED in say(faulty, sender, question)
    proxy.mode = "forward"
    assert "shipped" in say(faulty, sender, question)

    proxy.stop()  # down: connection refused
    assert FAILED in say(faulty, sender, "what do you charge for postage?")
    proxy.start()
    assert say(faulty, sender, "what do you charge for postage?").startswith("Standard shipping")

    proxy.mode = "slow"
    started = time.monotonic()
    assert FAILED in say(faulty, sender, question)
    waited = time.monotonic() - started
    print(f"stalled action server: answered after {waited:.1f} s")
    proxy.mode = "forward"
    assert ACTION_TIMEOUT - 1 <= waited < ACTION_TIMEOUT + 15, waited
    assert "shipped" in say(faulty, sender, question)

    # Every message is in the tracker store, failed turns included.
    assert user_texts(faulty, sender) == [question, "alex@example.com", question, question,
                                          "what do you charge for postage?",
                                          "what do you charge for postage?", question, question]


def test_a_rasa_restart_keeps_the_conversation(faulty: dict) -> None:
    sender = "restart-test"
    assert "e-mail address on order 36402" in say(faulty, sender, "please cancel my order 36402")
    assert "really want to cancel order 36402" in say(faulty, sender, "sam@example.com")

    stop(faulty["rasa"])
    servers = faulty["servers"]
    faulty["rasa"] = start_rasa(servers["model"], servers["port"], servers["endpoints"],
                                servers["jwt_secret"], servers["log"])
    wait_until_up(faulty["url"] + "/", [faulty["rasa"]])

    assert "order 36402 is cancelled" in say(faulty, sender, "yes")
    assert user_texts(faulty, sender) == ["please cancel my order 36402", "sam@example.com",
                                          "yes"]


def _truncate_in_model(model: Path, target: Path, component: str, file: str) -> str:
    """Copies the Rasa model with one of a component's files cut to a third."""
    unpacked = target.parent / "unpacked"
    with tarfile.open(model) as archive:
        archive.extractall(unpacked, filter="data")
    # The first of the component's copies (config.yml has one SentimentAnalyzer per language).
    victim = sorted(p for p in unpacked.rglob("*")
                    if component in p.parent.as_posix() and p.as_posix().endswith(file))[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(unpacked.iterdir()):
            archive.add(path, arcname=path.name)
    shutil.rmtree(unpacked)
    return victim.name


@pytest.mark.parametrize(("component", "file"),
                         [("TransformerIntentClassifier", "onnx/model.int8.onnx"),
                          ("SentimentAnalyzer", "/tokenizer.json")])
def test_rasa_run_refuses_a_broken_model_naming_the_file(assistant_model: Path, tmp_path: Path,
                                                         component: str, file: str) -> None:
    broken = tmp_path / "broken.tar.gz"
    name = _truncate_in_model(assistant_model, broken, component, file)

    started = subprocess.run(
        [str(BIN / "rasa"), "run", "--model", str(broken), "--interface", "127.0.0.1",
         "--port", str(free_port()), "--endpoints", "endpoints.yml"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)

    output = started.stdout + started.stderr
    print(f"rasa run with a truncated {file}: exit {started.returncode}")
    assert started.returncode != 0, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert "refusing to serve" in last and component in last, last
    assert name.split(".")[0] in last, last
