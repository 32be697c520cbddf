"""deploy.stack, deploy.postgres and the launcher: their pure parts (commands,
environments, refusals) without starting a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import postgres, stack
from deploy.__main__ import where
from deploy.config import (
    JWT_SECRET,
    POSTGRES_PASSWORD,
    REDIS_PASSWORD,
    SCALE_DIR,
    WEBCHAT_SECRET,
    ScaleError,
    StackConfig,
)

SECRETS = {POSTGRES_PASSWORD: "p" * 40, REDIS_PASSWORD: "r" * 40, JWT_SECRET: "j" * 40,
           WEBCHAT_SECRET: "w" * 40}


@pytest.fixture
def two_by_two(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> stack.Stack:
    """A stack object for the default config, its servers described, nothing started."""
    monkeypatch.setattr(stack, "find_bindir", lambda: tmp_path / "bin")
    monkeypatch.setattr(stack, "haproxy_binary", lambda: "/usr/sbin/haproxy")
    monkeypatch.setattr(stack, "redis_binary", lambda: "/usr/bin/redis-server")
    built = stack.Stack(StackConfig(work_dir=SCALE_DIR / "test-never-started"), say=lambda _: None)
    built.secrets = dict(SECRETS)
    built._servers()
    return built


def test_no_secret_is_on_a_command_line(two_by_two: stack.Stack) -> None:
    servers = [two_by_two.redis, two_by_two.haproxy, *two_by_two.rasa, *two_by_two.actions]
    assert len(servers) == 6
    for server in servers:
        assert server is not None
        assert not any(secret in arg for secret in SECRETS.values() for arg in server.command)
        assert not any(arg in ("--jwt-secret", "--auth-token") for arg in server.command)


def test_each_server_gets_only_the_secrets_it_uses(two_by_two: stack.Stack) -> None:
    for rasa in two_by_two.rasa:
        assert {POSTGRES_PASSWORD, REDIS_PASSWORD, JWT_SECRET, WEBCHAT_SECRET} <= set(rasa.env)
        assert "--enable-api" in rasa.command  # bot.serve adds the JWT secret in-process
    for actions in two_by_two.actions:
        assert REDIS_PASSWORD not in actions.env and WEBCHAT_SECRET not in actions.env
        assert actions.env["SHOP_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert two_by_two.redis is not None and two_by_two.redis.env == {}


def test_the_servers_listen_on_their_ports_and_are_checked_there(two_by_two: stack.Stack
                                                                 ) -> None:
    ports = two_by_two.ports
    for server, port in zip(two_by_two.rasa, ports.rasa):
        assert server.command[server.command.index("--port") + 1] == str(port)
        assert server.command[server.command.index("--interface") + 1] == "127.0.0.1"
        assert server.health_url == f"http://127.0.0.1:{port}/"
    for server, port in zip(two_by_two.actions, ports.actions):
        assert server.health_url == f"http://127.0.0.1:{port}/health"
    assert two_by_two.url == f"http://127.0.0.1:{ports.balancer}"


def test_the_launcher_says_where_things_are_without_secrets(two_by_two: stack.Stack) -> None:
    text = where(two_by_two)
    assert f"http://localhost:{two_by_two.ports.balancer}/webhooks/webchat/" in text
    assert "scale_postgres_password" in text
    assert not any(secret in text for secret in SECRETS.values())


def test_the_private_passwords_do_not_leak_into_every_child(
        two_by_two: stack.Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # The launcher may have them in its own environment (an override); HAProxy and
    # Redis must not inherit them.
    monkeypatch.setenv(POSTGRES_PASSWORD, SECRETS[POSTGRES_PASSWORD])
    seen: dict[str, dict] = {}

    class Recorder:
        def __init__(self, command: list[str], env: dict, **_: object) -> None:
            seen[Path(command[0]).name] = env

    monkeypatch.setattr(stack.subprocess, "Popen", Recorder)
    assert two_by_two.haproxy is not None
    two_by_two.haproxy.log = Path("/dev/null")
    two_by_two.haproxy.start()
    assert POSTGRES_PASSWORD not in seen["haproxy"]


def test_a_missing_model_is_refused_before_anything_starts(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stack, "find_bindir", lambda: tmp_path)
    config = StackConfig(work_dir=SCALE_DIR / "test-never-started", base_port=0,
                         model=tmp_path / "missing.tar.gz")
    with pytest.raises(ScaleError, match="no trained model"):
        stack.Stack(config, say=lambda _: None).prepare()
    assert not config.work_dir.exists()


def test_postgresql_runs_as_postgres_under_root_only() -> None:
    assert postgres.as_owner(["pg_ctl", "start"], euid=0) == [
        "runuser", "-u", "postgres", "--", "pg_ctl", "start"]
    assert postgres.as_owner(["pg_ctl", "start"], euid=1000) == ["pg_ctl", "start"]


def test_the_newest_postgresql_is_chosen(tmp_path: Path) -> None:
    found = []
    for version in ("9.6", "15", "13"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        (bindir / "pg_ctl").touch()
        found.append(bindir)
    assert postgres.find_bindir(found) == tmp_path / "15" / "bin"


def test_no_postgresql_is_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres.shutil, "which", lambda _: None)
    with pytest.raises(ScaleError, match="make scale-packages"):
        postgres.find_bindir([])
