"""``python -m bot.api_token``: a short-lived Bearer token for Rasa's HTTP API.

The secret is read from ``$RASA_JWT_SECRET`` (``make run`` keeps it in
``.secrets/rasa_jwt_secret``), never from the command line. The token is
printed as a header line, so that curl can read it from standard input and it
never appears on a command line either::

    export RASA_JWT_SECRET=$(cat .secrets/rasa_jwt_secret)
    python -m bot.api_token | curl -H @- localhost:5005/status
    python -m bot.api_token --role user --username rest:alice --ttl 60   # one conversation

``--bare`` prints the token alone (for a client that sets the header itself).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from cs_core.api_auth import DEFAULT_TTL_S, MAX_TTL_S, ROLES, SECRET_VARIABLE, make_api_token


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Prints the header (or, with ``--bare``, the token).

    Returns:
        The exit status: 0, or 2 when the secret or an argument is unusable.
    """
    parser = argparse.ArgumentParser(
        prog="python -m bot.api_token",
        description=f"Print an 'Authorization: Bearer' header for Rasa's HTTP API, signed "
                    f"with ${SECRET_VARIABLE} (read from the environment only).")
    parser.add_argument("--role", choices=ROLES, default="admin",
                        help="admin: every endpoint; user: one conversation (default admin)")
    parser.add_argument("--username", default="operator",
                        help="who calls; with --role user, the conversation id")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_S,
                        help=f"lifetime in seconds (default {DEFAULT_TTL_S}, at most {MAX_TTL_S})")
    parser.add_argument("--bare", action="store_true", help="print the token without 'Bearer'")
    options = parser.parse_args(argv)
    secret = (os.environ if environ is None else environ).get(SECRET_VARIABLE, "")
    if not secret:
        print(f"bot.api_token: set {SECRET_VARIABLE} in the environment (the Rasa server's "
              f"value); it is never taken as an argument", file=sys.stderr)
        return 2
    try:
        token = make_api_token(secret, username=options.username, role=options.role,
                               ttl_s=options.ttl)
    except ValueError as error:
        print(f"bot.api_token: {error}", file=sys.stderr)
        return 2
    print(token if options.bare else f"Authorization: Bearer {token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
