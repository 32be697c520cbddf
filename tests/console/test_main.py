"""``python -m console create-agent`` (console/__main__.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions.db import SqlBackend
from console.__main__ import main
from console.store import ConsoleStore


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"SHOP_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"}


async def agent_signs_in(environ: dict[str, str], password: str) -> bool:
    backend = SqlBackend(environ["SHOP_DATABASE_URL"])
    try:
        store = ConsoleStore(await backend.engine())
        return await store.authenticate("dana", password) is not None
    finally:
        await backend.close()


def test_create_agent_reads_the_password_from_the_environment(environ, capsys) -> None:
    status = main(["create-agent", "--username", "dana", "--name", "Dana Reyes"],
                  environ | {"CONSOLE_AGENT_PASSWORD": "long enough secret"})

    assert status == 0
    assert "created agent dana (Dana Reyes" in capsys.readouterr().out


async def test_the_created_agent_can_sign_in(environ) -> None:
    import asyncio

    status = await asyncio.to_thread(main, ["create-agent", "--username", "dana"],
                                     environ | {"CONSOLE_AGENT_PASSWORD": "long enough secret"})

    assert status == 0 and await agent_signs_in(environ, "long enough secret")


@pytest.mark.parametrize("extra, message", [
    ({}, "set CONSOLE_AGENT_PASSWORD"),
    ({"CONSOLE_AGENT_PASSWORD": "short"}, "10 to 1024 characters"),
])
def test_create_agent_refusals(environ, capsys, monkeypatch, extra: dict, message: str) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    assert main(["create-agent", "--username", "dana"], environ | extra) == 2
    assert message in capsys.readouterr().err


def test_there_is_no_password_option(environ) -> None:
    with pytest.raises(SystemExit):
        main(["create-agent", "--username", "dana", "--password", "long enough secret"],
             environ)


def test_serving_needs_the_rasa_secret(environ, capsys) -> None:
    assert main([], environ) == 2
    assert "RASA_JWT_SECRET" in capsys.readouterr().err
