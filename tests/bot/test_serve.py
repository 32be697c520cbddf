"""``python -m bot.serve``: Rasa through its start-up hook, the token kept off ``ps``.

The served test runs a model whose config has none of this project's components
or policies: log masking and the token handling come from the hook alone.
"""

from __future__ import annotations

import secrets
import subprocess
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.serve import TokenOnCommandLine, rasa_arguments
from tests.served import BIN, ENV, ROOT, free_port, get, post, run, stop, tail, wait_until_up

BARE_CONFIG = """recipe: default.v1
language: en
assistant_id: bare
pipeline:
  - name: KeywordIntentClassifier
policies:
  - name: RulePolicy
"""
BARE_DOMAIN = """version: "3.1"
intents: [greet]
responses:
  utter_greet:
    - text: "Hello!"
"""
BARE_DATA = """version: "3.1"
nlu:
  - intent: greet
    examples: |
      - hello
      - hi there
rules:
  - rule: greet
    steps:
      - intent: greet
      - action: utter_greet
"""


def test_the_token_comes_from_the_environment() -> None:
    assert rasa_arguments(["--enable-api", "--port", "5"], {"RASA_TOKEN": "t0k"}) == [
        "run", "--enable-api", "--port", "5", "--auth-token", "t0k"]
    assert rasa_arguments(["--port", "5"], {"RASA_TOKEN": "t0k"}) == ["run", "--port", "5"]
    assert rasa_arguments(["--enable-api"], {}) == ["run", "--enable-api"]


@pytest.mark.parametrize("argv", [["--auth-token", "t0k"], ["--enable-api", "--auth-token=t0k"]])
def test_a_token_on_the_command_line_is_refused(argv: list[str]) -> None:
    with pytest.raises(TokenOnCommandLine, match="RASA_TOKEN"):
        rasa_arguments(argv, {})


@pytest.fixture(scope="module")
def bare_rasa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("bare-rasa")
    (work / "data").mkdir()
    (work / "config.yml").write_text(BARE_CONFIG)
    (work / "domain.yml").write_text(BARE_DOMAIN)
    (work / "data" / "nlu.yml").write_text(BARE_DATA)
    trained = run(str(BIN / "rasa"), "train", "--config", str(work / "config.yml"),
                  "--domain", str(work / "domain.yml"), "--data", str(work / "data"),
                  "--out", str(work), "--fixed-model-name", "bare", timeout=600)
    assert trained.returncode == 0, tail(trained)
    port, token, log = free_port(), secrets.token_urlsafe(16), work / "rasa.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "python"), "-m", "bot.serve", "--enable-api", "--debug",
             "--interface", "127.0.0.1", "--port", str(port), "--model",
             str(work / "bare.tar.gz")],
            cwd=ROOT, env=ENV | {"RASA_TOKEN": token, "RASA_CONFIG": str(work / "config.yml")},
            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", [process])
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "log": log,
               "pid": process.pid}
    finally:
        stop(process)


def test_the_rasa_log_is_masked_without_any_project_component(bare_rasa: dict) -> None:
    sender = "jo.bloggs@example.com"
    post(bare_rasa["url"] + "/webhooks/rest/webhook",
         {"sender": sender, "message": "hello, my card is 4111 1111 1111 1111"})

    log = bare_rasa["log"].read_text()
    assert "my card is <card>" in log, log[-3000:]
    assert "4111 1111" not in log and sender not in log


def test_the_token_is_not_on_the_command_line(bare_rasa: dict) -> None:
    cmdline = Path(f"/proc/{bare_rasa['pid']}/cmdline").read_bytes().decode()

    assert "bot.serve" in cmdline
    assert bare_rasa["token"] not in cmdline


def test_the_http_api_needs_the_token_from_the_environment(bare_rasa: dict) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(bare_rasa["url"] + "/status")
    refused.value.close()

    assert refused.value.code == 401
    assert b"model_file" in get(bare_rasa["url"] + "/status?token=" + bare_rasa["token"])
