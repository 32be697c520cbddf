"""``python -m bot.serve``: Rasa through its start-up hook, the JWT secret kept off ``ps``.

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

from bot.serve import TokenOnCommandLine, UnsafeAuthentication, rasa_arguments
from tests.served import BIN, ENV, ROOT, api, free_port, get, post, run, stop, tail, wait_until_up

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


SECRET = "s" * 40


def test_the_jwt_secret_comes_from_the_environment() -> None:
    assert rasa_arguments(["--enable-api", "--port", "5"], {"RASA_JWT_SECRET": SECRET}) == [
        "run", "--enable-api", "--port", "5", f"--jwt-secret={SECRET}", "--jwt-method", "HS256"]
    assert rasa_arguments(["--port", "5"], {"RASA_JWT_SECRET": SECRET}) == ["run", "--port", "5"]
    assert rasa_arguments(["--port", "5"], {}) == ["run", "--port", "5"]


def test_a_secret_that_starts_with_a_dash_reaches_rasa_whole() -> None:
    from rasa.__main__ import create_argument_parser

    secret = "-" + "x" * 42  # token_urlsafe starts with "-" one time in 32
    parsed = create_argument_parser().parse_args(
        rasa_arguments(["--enable-api"], {"RASA_JWT_SECRET": secret}))

    assert parsed.jwt_secret == secret


@pytest.mark.parametrize("argv", [["--auth-token", "t0k"], ["--enable-api", "--auth-token=t0k"],
                                  ["--enable-api", "--jwt-secret", SECRET],
                                  ["--jwt-private-key=k"]])
def test_a_secret_on_the_command_line_is_refused(argv: list[str]) -> None:
    with pytest.raises(TokenOnCommandLine, match="RASA_JWT_SECRET in the environment"):
        rasa_arguments(argv, {"RASA_JWT_SECRET": SECRET})


@pytest.mark.parametrize("environ, message", [
    ({}, "--enable-api without RASA_JWT_SECRET"),
    ({"RASA_JWT_SECRET": "short"}, "at least 32 bytes"),
    ({"RASA_JWT_SECRET": SECRET, "RASA_TOKEN": "t0k"}, r"\?token= in URLs"),
], ids=["open API", "short secret", "static token"])
def test_an_open_or_leaky_api_is_refused(environ: dict, message: str) -> None:
    with pytest.raises(UnsafeAuthentication, match=message):
        rasa_arguments(["--enable-api"], environ)


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
    port, secret, log = free_port(), secrets.token_urlsafe(32), work / "rasa.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "python"), "-m", "bot.serve", "--enable-api", "--debug",
             "--interface", "127.0.0.1", "--port", str(port), "--model",
             str(work / "bare.tar.gz")],
            cwd=ROOT, env=ENV | {"RASA_JWT_SECRET": secret,
                                 "RASA_CONFIG": str(work / "config.yml")},
            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", [process])
        yield {"url": f"http://127.0.0.1:{port}", "jwt_secret": secret, "log": log,
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


def test_the_secret_is_not_on_the_command_line(bare_rasa: dict) -> None:
    cmdline = Path(f"/proc/{bare_rasa['pid']}/cmdline").read_bytes().decode()

    assert "bot.serve" in cmdline
    assert bare_rasa["jwt_secret"] not in cmdline


def test_the_http_api_needs_a_bearer_token_signed_with_the_secret(bare_rasa: dict) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(bare_rasa["url"] + "/status")
    refused.value.close()

    assert refused.value.code == 401
    assert b"model_file" in get(bare_rasa["url"] + "/status", api(bare_rasa))
