"""Starting, faulting and stopping the scale stack's processes.

:class:`Stack` brings up, in order: PostgreSQL (the project's own cluster), the
shop schema's migrations, Redis, HAProxy, the action servers and the Rasa
instances; it waits until HAProxy sees every server up. Faults for the checks:
``kill`` (SIGKILL, as an out-of-memory kill or a lost node), ``restart`` (what an
orchestrator does next) and ``restart_postgres``. ``stop`` ends everything in the
reverse order. Each server runs in its own session, so that a Ctrl+C in the
terminal reaches only the launcher, which then stops the stack in that order.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from deploy.config import (
    POSTGRES_PASSWORD,
    REDIS_PASSWORD,
    ROOT,
    Ports,
    ScaleError,
    StackConfig,
    actions_env,
    load_secrets,
    render_endpoints,
    render_haproxy,
    render_redis_conf,
    server_env,
    shop_database_url,
    taken_ports,
    tracker_database_url,
)
from deploy.postgres import Cluster, find_bindir

PYTHON = Path(sys.executable)
BASE_ENV = {"RASA_TELEMETRY_ENABLED": "false", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(ROOT)}
# Secrets the launcher itself may hold but must not pass on to every child.
_PRIVATE = (POSTGRES_PASSWORD, REDIS_PASSWORD)


@dataclass
class Server:
    """One process of the stack, restartable with the same command."""

    name: str
    command: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    health_url: str | None = None
    process: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _PRIVATE}
        with self.log.open("a") as out:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=env | BASE_ENV | self.env,
                                            stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when the kernel or a node takes it away."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 30) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def healthy(self) -> bool:
        if not self.alive() or self.health_url is None:
            return self.alive()
        try:
            with urllib.request.urlopen(self.health_url, timeout=3):
                return True
        except OSError:
            return False


def haproxy_binary() -> str:
    for candidate in ("/usr/sbin/haproxy", "/usr/bin/haproxy"):
        if Path(candidate).exists():
            return candidate
    raise ScaleError("HAProxy is not installed; `make scale-packages` installs Debian's")


def redis_binary() -> str:
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if Path(candidate).exists():
            return candidate
    raise ScaleError("redis-server is not installed; `make scale-packages` installs Debian's")


async def migrate_shop(url: str) -> None:
    """Creates or migrates the shop schema and seeds the demo shop, once, before the
    action servers start (two servers migrating an empty PostgreSQL database at
    the same moment would race on ``CREATE TABLE``)."""
    from actions.db import SqlBackend

    backend = SqlBackend(url, seed=True)
    try:
        await backend.start()
    finally:
        await backend.close()


class Stack:
    """The scale stack of one :class:`StackConfig`."""

    def __init__(self, config: StackConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.ports: Ports = config.ports()
        self.work = config.work_dir
        self.logs = self.work / "logs"
        self.cluster = Cluster(self.work / "postgres", self.ports.postgres, find_bindir())
        self.secrets: dict[str, str] = {}
        self.rasa: list[Server] = []
        self.actions: list[Server] = []
        self.haproxy: Server | None = None
        self.redis: Server | None = None
        self.started = False

    # -- where things are ---------------------------------------------------------------
    @property
    def url(self) -> str:
        """The balancer: what customers and the HTTP API's callers use."""
        return f"http://127.0.0.1:{self.ports.balancer}"

    @property
    def admin_socket(self) -> Path:
        return self.work / "haproxy.sock"

    def tracker_url(self) -> str:
        """The tracker store's URL with its password (for the checks' read-back only)."""
        return tracker_database_url(self.config, self.ports, self.secrets[POSTGRES_PASSWORD])

    def shop_url(self) -> str:
        return shop_database_url(self.config, self.ports, self.secrets[POSTGRES_PASSWORD])

    # -- start --------------------------------------------------------------------------
    def prepare(self) -> None:
        """Everything before the servers: refusals, secrets, PostgreSQL, files."""
        taken = taken_ports(self.ports)
        if taken:
            raise ScaleError(f"ports {taken} are in use (another `make scale`?); stop it or "
                             f"choose another --base-port")
        if not self.config.model.is_file():
            raise ScaleError(f"no trained model at {self.config.model}")
        self.work.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        # The cluster's password must not change under its data (MissingSecret).
        must_exist = [POSTGRES_PASSWORD] if self.cluster.exists() else []
        self.secrets = load_secrets(self.config.secrets_dir, os.environ, must_exist=must_exist)
        if not self.cluster.exists():
            self.say(f"creating the PostgreSQL cluster in {self.cluster.root}")
            self.cluster.init()
        if self.cluster.running():  # left by a launcher that did not stop cleanly
            self.cluster.stop()
        self.cluster.start()
        self.cluster.ensure_role(self.config.database_user, self.secrets[POSTGRES_PASSWORD],
                                 [self.config.tracker_database, self.config.shop_database])
        asyncio.run(migrate_shop(self.shop_url()))
        (self.work / "endpoints.yml").write_text(render_endpoints(self.config, self.ports))
        (self.work / "haproxy.cfg").write_text(
            render_haproxy(self.config, self.ports, self.admin_socket))
        redis_conf = self.work / "redis.conf"
        redis_conf.unlink(missing_ok=True)
        descriptor = os.open(redis_conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        (self.work / "redis").mkdir(exist_ok=True)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(render_redis_conf(self.ports, self.work / "redis",
                                           self.secrets[REDIS_PASSWORD]))

    def _servers(self) -> None:
        config, ports, logs = self.config, self.ports, self.logs
        self.redis = Server("redis", [redis_binary(), str(self.work / "redis.conf")],
                            logs / "redis.log")
        self.haproxy = Server("haproxy", [haproxy_binary(), "-db", "-f",
                                          str(self.work / "haproxy.cfg")], logs / "haproxy.log")
        self.actions = [
            Server(f"actions{i + 1}", [str(PYTHON), "-m", "actions", "--port", str(port)],
                   logs / f"actions{i + 1}.log", actions_env(config, ports, self.secrets),
                   f"http://127.0.0.1:{port}/health")
            for i, port in enumerate(ports.actions)]
        origins = [f"http://localhost:{ports.balancer}", f"http://127.0.0.1:{ports.balancer}"]
        self.rasa = [
            Server(f"rasa{i + 1}", [str(PYTHON), "-m", "bot.serve", "--enable-api",
                                    "--cors", *origins, "--interface", "127.0.0.1",
                                    "--port", str(port), "--model", str(config.model),
                                    "--endpoints", str(self.work / "endpoints.yml"),
                                    "--credentials", str(config.credentials)],
                   logs / f"rasa{i + 1}.log", server_env(config, ports, self.secrets),
                   f"http://127.0.0.1:{port}/")
            for i, port in enumerate(ports.rasa)]

    def start(self, timeout_s: float = 900) -> None:
        """Starts the whole stack and waits until the balancer has every server up."""
        self.prepare()
        self._servers()
        self.started = True
        assert self.redis is not None and self.haproxy is not None
        for server in (self.redis, self.haproxy, *self.actions, *self.rasa):
            server.start()
        self.wait_healthy([*self.actions, *self.rasa], timeout_s)
        self.wait_balanced(timeout_s=60)

    def wait_healthy(self, servers: list[Server], timeout_s: float = 900) -> float:
        """Waits until each server answers its health URL; returns the seconds taken."""
        began = time.monotonic()
        pending = list(servers)
        with tqdm(total=len(pending), desc="servers up", unit="server",
                  disable=not sys.stderr.isatty()) as bar:
            while pending:
                for server in list(pending):
                    if not server.alive():
                        raise ScaleError(f"{server.name} exited during start-up; see "
                                         f"{server.log}")
                    if server.healthy():
                        pending.remove(server)
                        bar.update()
                        self.say(f"{server.name} is up after {time.monotonic() - began:.0f} s")
                if time.monotonic() - began > timeout_s:
                    raise ScaleError(f"{[s.name for s in pending]} did not come up in "
                                     f"{timeout_s:.0f} s")
                if pending:
                    time.sleep(1)
        return time.monotonic() - began

    # -- HAProxy's runtime API -------------------------------------------------------------
    def haproxy_command(self, command: str) -> str:
        """One command on HAProxy's admin socket (``show stat``, ``set server ...``)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(str(self.admin_socket))
            client.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := client.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_states(self) -> dict[str, str]:
        """``backend/server`` -> HAProxy's status (``UP``, ``DOWN``, ``MAINT``, ...)."""
        rows = csv.DictReader(io.StringIO(self.haproxy_command("show stat").lstrip("# ")))
        return {f"{row['pxname']}/{row['svname']}": row["status"] for row in rows
                if row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_balanced(self, timeout_s: float = 60) -> None:
        """Waits until HAProxy's health checks have every server up (or in maintenance)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                states = self.server_states()
            except OSError:
                states = {}
            if states and all(s.startswith(("UP", "MAINT")) for s in states.values()):
                return
            if time.monotonic() > deadline:
                raise ScaleError(f"HAProxy does not see every server up: {states}")
            time.sleep(0.5)

    def set_rasa_enabled(self, index: int, enabled: bool) -> None:
        """Takes Rasa instance ``index`` out of (or back into) the balancer's rotation."""
        state = "ready" if enabled else "maint"
        for backend in ("rasa", "rasa_socketio"):
            self.haproxy_command(f"set server {backend}/rasa{index + 1} state {state}")

    # -- faults -------------------------------------------------------------------------
    def restart_postgres(self, down_s: float) -> float:
        """PostgreSQL down for ``down_s`` seconds (a fail-over, an upgrade); returns the
        seconds it did not accept connections."""
        gap, _ = self.cluster.restart(down_s)
        return gap

    # -- stop ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Stops everything, the balancer first, PostgreSQL last."""
        for server in (self.haproxy, *self.rasa, *self.actions, self.redis):
            if server is not None:
                server.stop()
        try:
            self.cluster.stop()
        except (ScaleError, OSError, subprocess.SubprocessError) as error:
            self.say(f"PostgreSQL did not stop cleanly: {error}")
        self.started = False

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
