"""``python -m console``: the agent console, and the command that creates agents.

::

    python -m console                       # serve on $CONSOLE_HOST:$CONSOLE_PORT
    python -m console create-agent --username dana --name "Dana Reyes"

``create-agent`` asks for the password twice on the terminal, or reads it from
``$CONSOLE_AGENT_PASSWORD`` (scripts); never from an argument, which ``ps`` shows.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from console import startup
from console.settings import ConsoleSettings, ConsoleSettingsError

PASSWORD_VARIABLE = "CONSOLE_AGENT_PASSWORD"


async def _create_agent(settings: ConsoleSettings, username: str, name: str,
                        password: str) -> int:
    from actions.db import SqlBackend
    from console.passwords import WeakPassword
    from console.store import ConsoleStore, StoreError

    backend = SqlBackend(settings.shop_database_url, seed=settings.seed_demo_data)
    try:
        store = ConsoleStore(await backend.engine())
        agent = await store.create_agent(username, name, password)
    except (StoreError, WeakPassword) as error:
        print(f"console: {error}", file=sys.stderr)
        return 2
    finally:
        await backend.close()
    print(f"created agent {agent.username} ({agent.display_name}, {agent.agent_id}); "
          f"sign in at http://{settings.host}:{settings.port}/login")
    return 0


def _password(environ: Mapping[str, str]) -> str | None:
    if environ.get(PASSWORD_VARIABLE):
        return environ[PASSWORD_VARIABLE]
    if not sys.stdin.isatty():
        print(f"console: set {PASSWORD_VARIABLE}, or run this on a terminal to be asked",
              file=sys.stderr)
        return None
    first = getpass.getpass("Password (10 characters or more): ")
    if getpass.getpass("Again: ") != first:
        print("console: the passwords differ", file=sys.stderr)
        return None
    return first


async def _serve(settings: ConsoleSettings) -> None:
    from aiohttp import web

    from actions.db import SqlBackend
    from console.app import make_app
    from console.store import ConsoleStore

    backend = SqlBackend(settings.shop_database_url, seed=settings.seed_demo_data)
    app = make_app(settings, ConsoleStore(await backend.engine()))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    logging.getLogger("console").info("agent console on http://%s:%d/", settings.host,
                                      settings.port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await backend.close()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Runs the console or one of its commands; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m console", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    create = commands.add_parser("create-agent", help="create an agent account")
    create.add_argument("--username", required=True)
    create.add_argument("--name", default="", help="the name customers see (default: username)")
    options = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    environ = os.environ if environ is None else environ
    startup.install()
    try:
        settings = ConsoleSettings.from_env(environ,
                                            need_rasa=options.command != "create-agent")
    except ConsoleSettingsError as error:
        print(f"console: {error}", file=sys.stderr)
        return 2
    if options.command == "create-agent":
        password = _password(environ)
        if password is None:
            return 2
        return asyncio.run(_create_agent(settings, options.username, options.name, password))
    try:
        asyncio.run(_serve(settings))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
