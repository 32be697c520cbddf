"""Customer identity tokens for the web chat (like Intercom's or Zendesk's identity
verification).

The shop's backend knows who is logged in; the chat server does not. So the shop
signs a short-lived token naming the customer with the secret it shares with the
chat server, ``SHOP_IDENTITY_SECRET``, and its page hands the token to the web
chat (never in a URL; see docs/channels.md). The web chat channel verifies it
once per session and then vouches for the customer in every message's metadata
(``verified_identity``), which the actions trust.

The token is a JWT signed with HS256 (any JWT library of the shop's language can
make one) with three required claims:

- ``sub``: the customer id (``customers.customer_id`` in the shop database);
- ``iat``: when it was issued (seconds since the epoch);
- ``exp``: when it expires; at most :data:`MAX_TTL_S` after ``iat``.

For tests and shops without a JWT library at hand::

    export SHOP_IDENTITY_SECRET=...          # the same value as the chat server's
    python -m bot.identity --customer C-001 --ttl 3600

prints a token. The secret is read from the environment only: a command-line
argument would show it to everyone on the machine (``ps``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

SECRET_VARIABLE = "SHOP_IDENTITY_SECRET"
ALGORITHM = "HS256"
DEFAULT_TTL_S = 3600
# A stolen token works until it expires: a week is the longest any shop page needs.
MAX_TTL_S = 7 * 24 * 3600
# RFC 7518 3.2: an HS256 key must have at least as many bits as the hash (256).
MIN_SECRET_BYTES = 32
MAX_CUSTOMER_ID_LENGTH = 128
# A JWT with three short claims is about 200 characters; anything far longer is junk.
MAX_TOKEN_LENGTH = 4096
# Tolerated clock difference between the shop's servers and ours.
LEEWAY_S = 30


class IdentityError(Exception):
    """A customer token that does not identify a customer."""


class TokenExpired(IdentityError):
    """The token was valid, but its ``exp`` has passed."""


class TokenInvalid(IdentityError):
    """The token is malformed, wrongly signed, or lacks or misuses a claim."""


def check_secret(secret: str) -> str:
    """``secret`` if it is long enough to sign tokens with HS256.

    Args:
        secret: The shared secret.

    Returns:
        The secret, unchanged.

    Raises:
        ValueError: The secret is not a string of at least :data:`MIN_SECRET_BYTES`
            bytes (the message names the variable, never the value).
    """
    if not isinstance(secret, str) or len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"{SECRET_VARIABLE} must be at least {MIN_SECRET_BYTES} bytes long; generate "
            f"one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return secret


def valid_customer_id(customer_id: Any) -> bool:
    """Whether ``customer_id`` can name a customer: a short printable string."""
    return (isinstance(customer_id, str) and 0 < len(customer_id) <= MAX_CUSTOMER_ID_LENGTH
            and customer_id.isprintable() and customer_id.strip() == customer_id)


def make_customer_token(customer_id: str, secret: str, ttl_s: float = DEFAULT_TTL_S, *,
                        now: float | None = None) -> str:
    """A token that names ``customer_id`` for ``ttl_s`` seconds.

    Args:
        customer_id: The customer's id in the shop database.
        secret: The shared secret (``SHOP_IDENTITY_SECRET``).
        ttl_s: How long the token is valid, at most :data:`MAX_TTL_S`.
        now: The issue time (seconds since the epoch); the clock when None.

    Returns:
        The JWT (HS256) with ``sub``, ``iat`` and ``exp``.

    Raises:
        ValueError: The customer id, the lifetime or the secret is unusable.
    """
    check_secret(secret)
    if not valid_customer_id(customer_id):
        raise ValueError(f"a customer id is 1-{MAX_CUSTOMER_ID_LENGTH} printable characters "
                         f"without surrounding spaces")
    if isinstance(ttl_s, bool) or not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"the lifetime must be 1-{MAX_TTL_S} seconds")
    issued = int(time.time() if now is None else now)
    claims = {"sub": customer_id, "iat": issued, "exp": issued + math.ceil(ttl_s)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenInvalid(f"'{name}' must be a number")
    return float(value)


def verify_customer_token(token: Any, secret: str, now: float | None = None) -> str:
    """The customer id that ``token`` names, if the shop signed it and it is current.

    Args:
        token: The token as the client sent it (any JSON value).
        secret: The shared secret (``SHOP_IDENTITY_SECRET``).
        now: The current time (seconds since the epoch); the clock when None.

    Returns:
        The customer id (the ``sub`` claim).

    Raises:
        TokenExpired: ``exp`` has passed (beyond :data:`LEEWAY_S`).
        TokenInvalid: Anything else: not a JWT, another algorithm (``none``
            included), a wrong signature, a missing or malformed ``sub``, ``iat``
            or ``exp``, issued in the future, or valid for longer than
            :data:`MAX_TTL_S`.
        ValueError: The secret is too short (a configuration error, not the
            client's).
    """
    check_secret(secret)
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise TokenInvalid("the token must be a non-empty string")
    try:
        # Only the signature and the presence of the claims are PyJWT's job: the
        # times are checked below against ``now``, so that tests need no clock.
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={
            "require": ["sub", "iat", "exp"], "verify_exp": False, "verify_iat": False,
            "verify_nbf": False, "verify_aud": False, "verify_iss": False})
    except jwt.InvalidTokenError as error:
        raise TokenInvalid(f"not a valid token ({type(error).__name__})") from None
    now = time.time() if now is None else now
    issued, expires = _number(claims, "iat"), _number(claims, "exp")
    if issued > now + LEEWAY_S:
        raise TokenInvalid("'iat' lies in the future")
    if expires - issued > MAX_TTL_S:
        raise TokenInvalid(f"the token is valid for longer than {MAX_TTL_S} s")
    if now >= expires + LEEWAY_S:
        raise TokenExpired("the token has expired")
    customer_id = claims.get("sub")
    if not valid_customer_id(customer_id):
        raise TokenInvalid("'sub' is not a customer id")
    return customer_id


def main(argv: Sequence[str] | None = None,
         environ: Mapping[str, str] | None = None) -> int:
    """``python -m bot.identity``: prints a customer token (secret from the environment).

    Args:
        argv: The arguments (``sys.argv[1:]`` when None).
        environ: The environment (``os.environ`` when None).

    Returns:
        The exit status: 0, or 2 when the secret or an argument is unusable.
    """
    parser = argparse.ArgumentParser(
        prog="python -m bot.identity",
        description=f"Print a web chat customer token signed with ${SECRET_VARIABLE} "
                    f"(read from the environment, never from the command line).")
    parser.add_argument("--customer", required=True, help="the customer id (the token's sub)")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_S,
                        help=f"lifetime in seconds (default {DEFAULT_TTL_S}, "
                             f"at most {MAX_TTL_S})")
    options = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    secret = environ.get(SECRET_VARIABLE, "")
    if not secret:
        print(f"bot.identity: set {SECRET_VARIABLE} in the environment (the chat server's "
              f"value); it is never taken as an argument", file=sys.stderr)
        return 2
    try:
        token = make_customer_token(options.customer, secret, options.ttl)
    except ValueError as error:
        print(f"bot.identity: {error}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
