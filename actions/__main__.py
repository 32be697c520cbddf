"""``python -m actions``: the action server, started through its start-up hook.

It takes the options of ``rasa run actions`` (``--port``, ``--cors``, ...);
``--actions`` defaults to this package. A plain ``rasa run actions --actions
actions`` serves the same actions, without the hook's log masking.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from actions import startup


def main(argv: Sequence[str] | None = None) -> None:
    """Installs the start-up hook, then runs rasa-sdk's server until stopped."""
    startup.install()
    from rasa_sdk.__main__ import main_from_args
    from rasa_sdk.endpoint import create_argument_parser

    args = create_argument_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    args.actions = args.actions or "actions"
    main_from_args(args)


if __name__ == "__main__":
    main()
