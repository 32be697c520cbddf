"""The served assistant for end-to-end tests: `make run`'s training steps and
`rasa run --enable-api` plus the action server on free localhost ports.

The fixtures are session-scoped (see tests/conftest.py) so every end-to-end test
shares one trained model and one pair of servers.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from cs_core.api_auth import bearer_headers

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SENTIMENT_MODEL = ROOT / "assets" / "sentiment"  # shipped (benchmarks/sentiment_v2.py)
SENTIMENT_ZH_MODEL = ROOT / "assets" / "sentiment_zh"  # shipped (benchmarks/sentiment_zh.py)
# The shop's secret for signed customer tokens (bot/identity.py) in the served tests.
IDENTITY_SECRET = "served-tests-identity-secret-0123456789abcdef"
ENV = os.environ | {"RASA_TELEMETRY_ENABLED": "false", "HF_HUB_OFFLINE": "1",
                    "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run(*args: str, timeout: int = 1200, **kwargs) -> subprocess.CompletedProcess:
    """Runs a command in the project directory; output is kept for failure messages."""
    return subprocess.run(list(args), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def tail(process: subprocess.CompletedProcess, lines: int = 40) -> str:
    return "\n".join((process.stdout + process.stderr).splitlines()[-lines:])


def train_assistant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make run`'s training step: `rasa train` (the sentiment model is shipped)."""
    for model in (SENTIMENT_MODEL, SENTIMENT_ZH_MODEL):
        assert (model / "classifier.json").is_file(), f"the shipped model {model} is missing"
    out = tmp_path_factory.mktemp("rasa-model")
    trained = run(str(BIN / "rasa"), "train", "--fixed-model-name", "assistant", "--out",
                  str(out))
    assert trained.returncode == 0, tail(trained)
    return out / "assistant.tar.gz"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


def post(url: str, payload: dict, headers: dict[str, str] | None = None) -> object:
    """POSTs JSON, returns the decoded answer (``HTTPError`` for 4xx/5xx)."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"} | (headers or {}))
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wait_until_up(url: str, processes: list[subprocess.Popen], seconds: int = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, f"{process.args[:3]} exited during start-up"
        try:
            get(url)
            return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not come up in {seconds} s")


async def serve_on_loopback(app: Any) -> tuple[Any, int]:
    """Serves an aiohttp ``web.Application`` on a free 127.0.0.1 port.

    Returns:
        The runner (``await runner.cleanup()`` stops it) and the port.
    """
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the free port


@asynccontextmanager
async def serve_sanic_on_loopback(app: Any) -> AsyncIterator[int]:
    """Serves a Sanic app (channels' blueprints, as Rasa mounts them) on a free
    127.0.0.1 port, in this event loop; yields the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        server = await app.create_server(sock=sock, return_asyncio_server=True,
                                         access_log=False)
        try:
            await server.startup()
            await server.before_start()
            await server.after_start()
            yield sock.getsockname()[1]
        finally:
            await server.before_stop()
            for connection in list(server.connections):  # e.g. socket.io long polls
                connection.close_if_idle()
            await server.close()
            await server.after_stop()


def api_secret() -> str:
    """A fresh ``RASA_JWT_SECRET`` for one pair of servers."""
    return secrets.token_urlsafe(32)


def api(served: dict, **claims: Any) -> dict[str, str]:
    """Headers for Rasa's HTTP API: a fresh admin Bearer token (``cs_core.api_auth``)."""
    return bearer_headers(served["jwt_secret"], **{"username": "tests", **claims})


def endpoints_file(path: Path, actions_url: str, tracker_db: Path) -> Path:
    """An endpoints.yml with the action server's URL and endpoints.yml's tracker store
    on a SQLite file."""
    path.write_text(
        f'action_endpoint:\n  url: "{actions_url}"\n'
        f'tracker_store:\n  type: bot.tracker_cache.CachedSQLTrackerStore\n'
        f'  dialect: "sqlite"\n  db: "{tracker_db}"\n')
    return path


def start_action_server(port: int, shop: Path, rasa_port: int, jwt_secret: str,
                        log: Path) -> subprocess.Popen:
    """`python -m actions` on 127.0.0.1:port with its own shop database."""
    with log.open("a") as out:
        return subprocess.Popen(
            [str(BIN / "python"), "-m", "actions", "--port", str(port)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env=ENV | {"SANIC_HOST": "127.0.0.1", "RASA_JWT_SECRET": jwt_secret,
                       "RASA_URL": f"http://127.0.0.1:{rasa_port}",
                       "SHOP_DATABASE_URL": f"sqlite+aiosqlite:///{shop}"})


def start_rasa(model: Path, port: int, endpoints: Path, jwt_secret: str,
               log: Path, *, credentials: Path | str = "credentials.yml",
               env: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m bot.serve --enable-api` (JWT secret from the environment) on 127.0.0.1:port.

    ``credentials`` opens other channels (e.g. a file naming a channel's secrets as
    ``${VARS}``), and ``env`` adds those variables to Rasa's environment.
    """
    with log.open("a") as out:
        return subprocess.Popen(
            [str(BIN / "python"), "-m", "bot.serve", "--enable-api",
             "--interface", "127.0.0.1", "--port", str(port), "--model", str(model),
             "--endpoints", str(endpoints), "--credentials", str(credentials)],
            cwd=ROOT, env=ENV | {"RASA_JWT_SECRET": jwt_secret,
                                 "SHOP_IDENTITY_SECRET": IDENTITY_SECRET} | (env or {}),
            stdout=out, stderr=subprocess.STDOUT)


def stop(*processes: subprocess.Popen) -> None:
    """Terminates the processes, killing those that do not end within 30 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_assistant(assistant_model: Path, tmp_path_factory: pytest.TempPathFactory, *,
                    credentials: Path | str = "credentials.yml",
                    env: dict[str, str] | None = None) -> Iterator[dict]:
    """`rasa run --enable-api` and the action server on free localhost ports
    (``credentials`` and ``env``: see :func:`start_rasa`)."""
    work = tmp_path_factory.mktemp("served")
    rasa_port, actions_port = free_port(), free_port()
    database = work / "tracker.db"
    jwt_secret = api_secret()
    shop = work / "shop.db"
    actions_url = f"http://127.0.0.1:{actions_port}/webhook"
    endpoints = endpoints_file(work / "endpoints.yml", actions_url, database)
    processes = [
        start_action_server(actions_port, shop, rasa_port, jwt_secret, work / "actions.log"),
        start_rasa(assistant_model, rasa_port, endpoints, jwt_secret, work / "rasa.log",
                   credentials=credentials, env=env),
    ]
    try:
        wait_until_up(f"http://127.0.0.1:{actions_port}/health", processes)
        wait_until_up(f"http://127.0.0.1:{rasa_port}/", processes)  # no token needed
        yield {"url": f"http://127.0.0.1:{rasa_port}", "database": database, "work": work,
               "jwt_secret": jwt_secret, "shop": shop, "actions_url": actions_url}
    finally:
        stop(*processes)
