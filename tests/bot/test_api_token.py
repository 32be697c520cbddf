"""``python -m bot.api_token``: the header for curl, the secret from the environment only."""

from __future__ import annotations

import jwt
import pytest

from bot.api_token import main

SECRET = "q" * 40


def test_prints_a_header_that_curl_reads_from_stdin(capsys: pytest.CaptureFixture) -> None:
    assert main(["--role", "user", "--username", "rest:alice", "--ttl", "60"],
                {"RASA_JWT_SECRET": SECRET}) == 0

    line = capsys.readouterr().out.strip()
    assert line.startswith("Authorization: Bearer ")
    claims = jwt.decode(line.split()[-1], SECRET, algorithms=["HS256"])
    assert claims["user"] == {"username": "rest:alice", "role": "user"}
    assert claims["exp"] - claims["iat"] == 60


def test_bare_prints_the_token_alone(capsys: pytest.CaptureFixture) -> None:
    assert main(["--bare"], {"RASA_JWT_SECRET": SECRET}) == 0

    token = capsys.readouterr().out.strip()
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["user"]["role"] == "admin"


@pytest.mark.parametrize("environ, argv, message", [
    ({}, [], "set RASA_JWT_SECRET in the environment"),
    ({"RASA_JWT_SECRET": "short"}, [], "at least 32 bytes"),
    ({"RASA_JWT_SECRET": SECRET}, ["--ttl", "0"], "lifetime"),
], ids=["no secret", "short secret", "bad lifetime"])
def test_refusals_exit_2(capsys: pytest.CaptureFixture, environ: dict, argv: list,
                         message: str) -> None:
    assert main(argv, environ) == 2

    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_there_is_no_secret_option() -> None:
    with pytest.raises(SystemExit):
        main(["--secret", SECRET], {})
