"""Bearer tokens for Rasa's HTTP API (cs_core/api_auth.py)."""

from __future__ import annotations

import jwt
import pytest

from cs_core.api_auth import (
    MAX_TTL_S,
    bearer_headers,
    check_secret,
    make_api_token,
    secret_from,
)

SECRET = "k" * 32


def claims(token: str) -> dict:
    return jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})


def test_a_token_carries_rasas_user_claims_and_expires() -> None:
    token = make_api_token(SECRET, username="rest:alice", role="user", ttl_s=60, now=1000)

    assert claims(token) == {"user": {"username": "rest:alice", "role": "user"},
                             "iat": 1000, "exp": 1060}


def test_the_default_is_a_short_lived_admin_token() -> None:
    made = claims(make_api_token(SECRET, now=0))

    assert made["user"]["role"] == "admin" and made["exp"] == 300


def test_bearer_headers_hold_a_token_not_the_secret() -> None:
    headers = bearer_headers(SECRET, username="shop-actions")

    scheme, token = headers["Authorization"].split(" ")
    assert scheme == "Bearer" and SECRET not in token
    assert claims(token)["user"]["username"] == "shop-actions"


@pytest.mark.parametrize("kwargs, message", [
    ({"role": "root"}, "role must be one of"),
    ({"username": ""}, "username must be"),
    ({"ttl_s": 0}, "lifetime"),
    ({"ttl_s": MAX_TTL_S + 1}, "lifetime"),
    ({"ttl_s": True}, "lifetime"),
])
def test_unusable_claims_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_api_token(SECRET, **kwargs)


@pytest.mark.parametrize("secret", ["", "k" * 31, None])
def test_a_short_secret_is_refused_without_echoing_it(secret) -> None:
    with pytest.raises(ValueError, match="RASA_JWT_SECRET must be at least 32 bytes") as error:
        check_secret(secret)

    assert "k" * 31 not in str(error.value)


def test_the_secret_from_the_environment() -> None:
    assert secret_from({}) == ""
    assert secret_from({"RASA_JWT_SECRET": SECRET}) == SECRET
    with pytest.raises(ValueError):
        secret_from({"RASA_JWT_SECRET": "short"})
