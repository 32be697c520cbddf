"""Bearer tokens for the Rasa server's HTTP API (Rasa's own JWT authentication).

The HTTP API (``/model/parse``, ``/conversations/...``) is protected by Rasa's
JWT support: ``python -m bot.serve`` hands ``$RASA_JWT_SECRET`` to Rasa as its
``--jwt-secret`` inside the process, and every caller this project builds (the
action server, the tests, the benchmarks, the README's curl lines) sends a
short-lived token in an ``Authorization: Bearer`` header. A static
``--auth-token`` would travel as ``?token=`` in URLs, where proxies and access
logs keep it, so the launcher refuses one.

Rasa reads two claims (``rasa/server.py``, ``requires_auth``)::

    {"user": {"username": "...", "role": "admin"}}

``admin`` may call every endpoint; ``user`` only the conversation whose id is
its ``username``. The tokens made here always expire (``exp``), since Rasa
accepts a token without one for ever.

From a shell (the secret is read from the environment, and curl reads the
header from standard input, so neither is on a command line)::

    python -m bot.api_token | curl -H @- localhost:5005/status
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import jwt

SECRET_VARIABLE = "RASA_JWT_SECRET"
ALGORITHM = "HS256"
ROLES = ("admin", "user")
# Callers make a token per call or per few calls; minutes are plenty, and a token
# copied out of a log is useless soon after.
DEFAULT_TTL_S = 300
MAX_TTL_S = 24 * 3600
# RFC 7518 3.2: an HS256 key must have at least as many bits as the hash (256).
MIN_SECRET_BYTES = 32


def check_secret(secret: str) -> str:
    """``secret`` if it is long enough to sign HS256 tokens.

    Raises:
        ValueError: It is shorter than :data:`MIN_SECRET_BYTES` bytes; the message
            names the variable and how to make one, never the value.
    """
    if not isinstance(secret, str) or len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"{SECRET_VARIABLE} must be at least {MIN_SECRET_BYTES} bytes long; generate "
            f"one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return secret


def make_api_token(secret: str, *, username: str = "shop", role: str = "admin",
                   ttl_s: float = DEFAULT_TTL_S, now: float | None = None) -> str:
    """A JWT that Rasa's HTTP API accepts.

    Args:
        secret: The Rasa server's ``RASA_JWT_SECRET``.
        username: Who calls; for ``role="user"``, the one conversation id it may use.
        role: ``"admin"`` (every endpoint) or ``"user"`` (one conversation).
        ttl_s: Lifetime in seconds, at most :data:`MAX_TTL_S`.
        now: The issue time (seconds since the epoch); the clock when None.

    Returns:
        The token (HS256) with ``user``, ``iat`` and ``exp``.

    Raises:
        ValueError: The secret, the role, the user name or the lifetime is unusable.
    """
    check_secret(secret)
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    if not isinstance(username, str) or not username:
        raise ValueError("username must be a non-empty string")
    if isinstance(ttl_s, bool) or not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"the lifetime must be 1-{MAX_TTL_S} seconds")
    issued = int(time.time() if now is None else now)
    claims = {"user": {"username": username, "role": role}, "iat": issued,
              "exp": issued + math.ceil(ttl_s)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def bearer_headers(secret: str, **claims: object) -> dict[str, str]:
    """``{"Authorization": "Bearer <token>"}`` with a fresh :func:`make_api_token`."""
    return {"Authorization": f"Bearer {make_api_token(secret, **claims)}"}


def secret_from(environ: Mapping[str, str]) -> str:
    """The API secret in ``environ`` (``""`` when unset), checked when set.

    Raises:
        ValueError: It is set but too short.
    """
    secret = environ.get(SECRET_VARIABLE, "")
    return check_secret(secret) if secret else ""
