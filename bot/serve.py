"""``python -m bot.serve``: the Rasa server, started through its start-up hook.

It takes the options of ``rasa run`` and

- runs ``nlu_components.startup.install`` first (log masking, action timeout
  from ``config.yml`` or ``$RASA_CONFIG``), whatever the model's pipeline is;
- protects the HTTP API with Rasa's JWT authentication: the secret comes from
  the environment (``RASA_JWT_SECRET``) and reaches Rasa inside the process, so
  it never appears on a command line (``ps``). Callers send short-lived Bearer
  tokens (``cs_core.api_auth``, ``python -m bot.api_token``).
- refuses ``--auth-token`` and ``--jwt-secret`` (``ps`` shows them), a static
  ``RASA_TOKEN`` (Rasa takes it only as ``?token=`` in URLs, which proxies and
  access logs keep), and ``--enable-api`` without a secret (an open API).

``rasa run`` itself still serves the same model, without the hook.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from cs_core.api_auth import ALGORITHM, SECRET_VARIABLE, secret_from

STATIC_TOKEN_VARIABLE = "RASA_TOKEN"
SECRET_OPTIONS = ("--auth-token", "--jwt-secret", "--jwt-private-key")


class UnsafeAuthentication(SystemExit):
    """The HTTP API would be open, or its secret would leak (``ps``, URLs)."""


class TokenOnCommandLine(UnsafeAuthentication):
    """A secret was given as an option, where ``ps`` shows it to everyone."""


def rasa_arguments(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """``rasa run`` arguments: ``argv`` plus, when the HTTP API is enabled, Rasa's
    JWT authentication with the secret from ``environ``.

    Raises:
        TokenOnCommandLine: ``argv`` holds a secret option.
        UnsafeAuthentication: ``RASA_TOKEN`` is set, the API is enabled without
            ``RASA_JWT_SECRET``, or the secret is too short.
    """
    for arg in argv:
        if arg in SECRET_OPTIONS or arg.startswith(tuple(o + "=" for o in SECRET_OPTIONS)):
            raise TokenOnCommandLine(
                f"bot.serve: do not put {arg.split('=')[0]} on the command line (ps shows "
                f"it); set {SECRET_VARIABLE} in the environment instead")
    if environ.get(STATIC_TOKEN_VARIABLE):
        raise UnsafeAuthentication(
            f"bot.serve: {STATIC_TOKEN_VARIABLE} is no longer used: Rasa takes a static "
            f"token only as ?token= in URLs, which proxies and access logs keep. Set "
            f"{SECRET_VARIABLE} and send Bearer tokens (python -m bot.api_token)")
    arguments = ["run", *argv]
    if "--enable-api" not in argv:
        return arguments
    try:
        secret = secret_from(environ)
    except ValueError as error:
        raise UnsafeAuthentication(f"bot.serve: {error}") from None
    if not secret:
        raise UnsafeAuthentication(
            f"bot.serve: --enable-api without {SECRET_VARIABLE} would let anyone read and "
            f"write every conversation; set it (make run keeps one in .secrets/)")
    # One token: a secret may start with "-" (token_urlsafe does, 1 time in 32), which
    # argparse would take for an option and refuse the start.
    return arguments + [f"--jwt-secret={secret}", "--jwt-method", ALGORITHM]


def main(argv: Sequence[str] | None = None) -> None:
    """Installs the start-up hook, then runs ``rasa run`` in this process."""
    arguments = rasa_arguments(list(sys.argv[1:] if argv is None else argv), os.environ)
    from nlu_components import startup

    startup.install()
    from rasa.__main__ import main as rasa_main

    # Rasa parses sys.argv; this list lives in our memory only, not in
    # /proc/<pid>/cmdline, which keeps the arguments the process was started with.
    sys.argv = ["rasa", *arguments]
    rasa_main()


if __name__ == "__main__":
    main()
