"""bot.identity: the customer tokens the shop signs for the web chat, and their CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import jwt
import pytest

from bot.identity import (
    LEEWAY_S,
    MAX_TTL_S,
    SECRET_VARIABLE,
    IdentityError,
    TokenExpired,
    TokenInvalid,
    main,
    make_customer_token,
    verify_customer_token,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-only shop identity secret, 32+ bytes long"
NOW = 1_700_000_000


def signed(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    """A JWT with exactly ``claims``, as a shop's own JWT library would make it."""
    return jwt.encode(claims, secret, algorithm=algorithm)


def test_a_token_names_its_customer() -> None:
    token = make_customer_token("C-001", SECRET, 600, now=NOW)

    assert verify_customer_token(token, SECRET, now=NOW) == "C-001"
    assert verify_customer_token(token, SECRET, now=NOW + 599) == "C-001"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "C-001", "iat": NOW, "exp": NOW + 600}


def test_a_token_from_another_jwt_library_is_accepted() -> None:
    assert verify_customer_token(signed({"sub": "王小明", "iat": NOW, "exp": NOW + 60.5}),
                                 SECRET, now=NOW) == "王小明"


def test_the_exceptions_form_one_hierarchy() -> None:
    assert issubclass(TokenExpired, IdentityError) and issubclass(TokenInvalid, IdentityError)
    assert not issubclass(TokenExpired, TokenInvalid)


def test_an_expired_token_is_refused_after_the_leeway() -> None:
    token = make_customer_token("C-001", SECRET, 60, now=NOW)

    assert verify_customer_token(token, SECRET, now=NOW + 60 + LEEWAY_S - 1) == "C-001"
    with pytest.raises(TokenExpired):
        verify_customer_token(token, SECRET, now=NOW + 60 + LEEWAY_S)


def _unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}."


def _hs512(claims: dict[str, Any]) -> str:
    # PyJWT warns that the secret is short for SHA-512: that is the point here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return signed(claims, algorithm="HS512")


VALID = {"sub": "C-001", "iat": NOW, "exp": NOW + 600}
INVALID_TOKENS = {
    "wrong secret": signed(VALID, secret="another secret that is 32+ bytes long"),
    "alg none": _unsigned(VALID),
    "alg none, upper case": _unsigned(VALID, "NONE"),
    "HS512 with the right secret": _hs512(VALID),
    "no sub": signed({"iat": NOW, "exp": NOW + 600}),
    "no iat": signed({"sub": "C-001", "exp": NOW + 600}),
    "no exp": signed({"sub": "C-001", "iat": NOW}),
    "sub a number": signed(VALID | {"sub": 1}),
    "sub empty": signed(VALID | {"sub": ""}),
    "sub with a newline": signed(VALID | {"sub": "C-001\nadmin"}),
    "sub with spaces around": signed(VALID | {"sub": " C-001"}),
    "sub too long": signed(VALID | {"sub": "C" * 129}),
    "exp a string": signed(VALID | {"exp": "tomorrow"}),
    "exp true": signed(VALID | {"exp": True}),
    "iat in the future": signed(VALID | {"iat": NOW + 3600, "exp": NOW + 7200}),
    "valid for more than a week": signed(VALID | {"exp": NOW + MAX_TTL_S + 1}),
    "tampered payload": (lambda t: t.split(".")[0] + "." + _unsigned(
        VALID | {"sub": "C-002"}).split(".")[1] + "." + t.split(".")[2])(signed(VALID)),
    "not a JWT": "not-a-token",
    "empty": "",
    "too long": "a" * 5000,
    "an object": {"sub": "C-001"},
    "a number": 12345,
    "None": None,
}


@pytest.mark.parametrize("name", list(INVALID_TOKENS))
def test_an_invalid_token_is_refused(name: str) -> None:
    with pytest.raises(TokenInvalid):
        verify_customer_token(INVALID_TOKENS[name], SECRET, now=NOW)


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_a_short_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ValueError, match=SECRET_VARIABLE) as refused:
        verify_customer_token(signed(VALID), secret, now=NOW)
    assert not isinstance(refused.value, IdentityError)
    with pytest.raises(ValueError, match=SECRET_VARIABLE):
        make_customer_token("C-001", secret)


@pytest.mark.parametrize(("customer_id", "ttl_s"), [
    ("", 60), (" C-001", 60), ("C\x00", 60), ("C" * 129, 60), (None, 60),
    ("C-001", 0), ("C-001", -5), ("C-001", MAX_TTL_S + 1), ("C-001", True),
])
def test_make_customer_token_refuses_what_it_cannot_sign(customer_id: Any, ttl_s: Any) -> None:
    with pytest.raises(ValueError):
        make_customer_token(customer_id, SECRET, ttl_s, now=NOW)


# -- the CLI ------------------------------------------------------------------------------


def test_the_cli_prints_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--customer", "C-001", "--ttl", "120"], {SECRET_VARIABLE: SECRET}) == 0

    token = capsys.readouterr().out.strip()
    assert verify_customer_token(token, SECRET) == "C-001"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 120


def test_the_cli_refuses_to_run_without_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--customer", "C-001"], {}) == 2

    captured = capsys.readouterr()
    assert captured.out == "" and SECRET_VARIABLE in captured.err


def test_the_cli_never_takes_the_secret_as_an_argument(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--customer", "C-001", "--secret", SECRET], {})
    assert exited.value.code == 2
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("arguments", [["--customer", "C-001", "--ttl", str(MAX_TTL_S + 1)],
                                       ["--customer", " "]])
def test_the_cli_refuses_bad_arguments(arguments: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(arguments, {SECRET_VARIABLE: SECRET}) == 2
    assert capsys.readouterr().out == ""


def test_the_cli_refuses_a_short_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--customer", "C-001"], {SECRET_VARIABLE: "tiny-secret-value"}) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "tiny-secret-value" not in captured.err


def test_python_dash_m_bot_identity() -> None:
    environ = {key: value for key, value in os.environ.items() if key != SECRET_VARIABLE}
    printed = subprocess.run([sys.executable, "-m", "bot.identity", "--customer", "C-001"],
                             cwd=ROOT, env=environ | {SECRET_VARIABLE: SECRET},
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert verify_customer_token(printed.stdout.strip(), SECRET) == "C-001"

    refused = subprocess.run([sys.executable, "-m", "bot.identity", "--customer", "C-001"],
                             cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stdout == ""
