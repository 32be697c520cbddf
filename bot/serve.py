"""``python -m bot.serve``: the Rasa server, started through its start-up hook.

It takes the options of ``rasa run`` and

- runs ``nlu_components.startup.install`` first (log masking, action timeout
  from ``config.yml`` or ``$RASA_CONFIG``), whatever the model's pipeline is;
- passes the HTTP API token from the environment (``RASA_TOKEN``) to Rasa
  inside the process, so that it never appears on a command line (``ps``);
  ``--auth-token`` on the command line is refused for the same reason.

``rasa run`` itself still serves the same model, without the hook.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

TOKEN_VARIABLE = "RASA_TOKEN"


class TokenOnCommandLine(SystemExit):
    """``--auth-token`` was given as an option, where ``ps`` shows it to everyone."""


def rasa_arguments(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """``rasa run`` arguments: ``argv`` plus the token from ``environ`` when the
    HTTP API is enabled.

    Raises:
        TokenOnCommandLine: ``argv`` holds ``--auth-token``.
    """
    if any(arg == "--auth-token" or arg.startswith("--auth-token=") for arg in argv):
        raise TokenOnCommandLine(
            f"bot.serve: do not put the token on the command line (ps shows it); "
            f"set {TOKEN_VARIABLE} in the environment instead")
    arguments = ["run", *argv]
    token = environ.get(TOKEN_VARIABLE, "")
    if token and "--enable-api" in argv:
        arguments += ["--auth-token", token]
    return arguments


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
