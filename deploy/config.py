"""What the scale stack is made of, and the files it runs from (pure functions).

Everything here is computed from a :class:`StackConfig` and the :class:`Ports` it
listens on, so that it can be tested without starting anything: the HAProxy
configuration, Rasa's ``endpoints.yml``, Redis's and PostgreSQL's settings, the
shop database's URL, and the secrets, read from git-ignored files (or the
environment) and refused when they are missing where they must exist, too short
or readable by other users.

Secrets never reach a command line (``ps`` shows those to every user) or a
generated file other than Redis's own (mode 0600): Rasa reads them from its
environment through ``${VAR}`` in ``endpoints.yml``; the action server gets its
database URL in its environment; the PostgreSQL role's password is set from a
SCRAM verifier, so that not even the server's log could show it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import socket
import stat
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The stack's own files (clusters, logs, generated configuration); git-ignored.
SCALE_DIR = ROOT / ".scale"
# Where make run keeps its secrets too (git-ignored); the stack shares the JWT and
# web chat secrets with it and adds its own database and Redis passwords.
SECRETS_DIR = ROOT / ".secrets"
MIN_SECRET_LENGTH = 32

POSTGRES_PASSWORD = "SCALE_POSTGRES_PASSWORD"
REDIS_PASSWORD = "SCALE_REDIS_PASSWORD"
JWT_SECRET = "RASA_JWT_SECRET"
WEBCHAT_SECRET = "WEBCHAT_SESSION_SECRET"
# Variable -> file in the secrets directory.
SECRET_FILES = {
    POSTGRES_PASSWORD: "scale_postgres_password",
    REDIS_PASSWORD: "scale_redis_password",
    JWT_SECRET: "rasa_jwt_secret",
    WEBCHAT_SECRET: "webchat_session_secret",
}
STICKINESS = ("cookie", "source")
# The paths HAProxy sends to the socket.io backend (web chat; Rasa's own socketio
# channel, if a deployment turns it on).
SOCKETIO_PATHS = ("/webhooks/webchat/socket.io", "/socket.io")


class ScaleError(SystemExit):
    """The stack cannot start as configured; the message says what to change."""


class MissingSecret(ScaleError):
    """A secret that must already exist is neither in the environment nor on disk."""


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one stack.

    Attributes:
        balancer: HAProxy's front end: REST, web chat and the HTTP API.
        stats: HAProxy's statistics page.
        actions_balancer: HAProxy's front end for the action servers (Rasa calls it).
        postgres: PostgreSQL.
        redis: Redis.
        rasa: One per Rasa instance.
        actions: One per action server.
    """

    balancer: int
    stats: int
    actions_balancer: int
    postgres: int
    redis: int
    rasa: tuple[int, ...]
    actions: tuple[int, ...]

    def __post_init__(self) -> None:
        ports = self.all()
        if len(set(ports)) != len(ports):
            raise ScaleError(f"the stack's ports must differ: {ports}")
        bad = [port for port in ports if not 1024 <= port <= 65535]
        if bad:
            raise ScaleError(f"ports {bad} are outside 1024-65535")

    def all(self) -> list[int]:
        """Every port, in a fixed order."""
        return [self.balancer, self.stats, self.actions_balancer, self.postgres, self.redis,
                *self.rasa, *self.actions]

    @classmethod
    def from_base(cls, base: int, rasa_instances: int, action_servers: int) -> Ports:
        """Fixed ports from ``base`` up (``make scale``: predictable addresses).

        The balancer is ``base``; Rasa instances from ``base + 10``, action servers
        from ``base + 30``.
        """
        return cls(balancer=base, stats=base + 1, actions_balancer=base + 2,
                   postgres=base + 3, redis=base + 4,
                   rasa=tuple(base + 10 + i for i in range(rasa_instances)),
                   actions=tuple(base + 30 + i for i in range(action_servers)))

    @classmethod
    def free(cls, rasa_instances: int, action_servers: int,
             pick: Callable[[], int] | None = None) -> Ports:
        """Ports the system has free now (the checks: no clash with a running stack)."""
        pick = pick or free_port
        chosen: list[int] = []
        while len(chosen) < 5 + rasa_instances + action_servers:
            port = pick()
            if port not in chosen:
                chosen.append(port)
        fixed, rest = chosen[:5], chosen[5:]
        return cls(*fixed, rasa=tuple(rest[:rasa_instances]),
                   actions=tuple(rest[rasa_instances:]))


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def taken_ports(ports: Ports) -> list[int]:
    """The ports someone already listens on (refused before anything starts)."""
    taken = []
    for port in ports.all():
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                taken.append(port)
    return taken


@dataclass(frozen=True)
class StackConfig:
    """The stack: how many of each server, where its files live, how it balances.

    Attributes:
        work_dir: Generated configuration, the PostgreSQL cluster, Redis, logs.
        secrets_dir: The git-ignored secret files (shared with ``make run``).
        model: The trained assistant every Rasa instance serves.
        credentials: Rasa's channels (REST and the web chat).
        rasa_instances: Rasa processes behind the balancer.
        action_servers: Action servers behind the balancer's action back end.
        base_port: The balancer's port, the others counted from it; 0 picks free
            ports (the checks).
        lock_lifetime_s: Rasa's ticket lock lifetime (``TICKET_LOCK_LIFETIME``):
            how long a conversation stays locked by an instance that died mid-turn.
            20 s, not Rasa's 60: ``bot.lock_store`` renews a live ticket every 5 s
            then, so only a process whose event loop stalls for 15 s loses its
            ticket (the busiest level of ``make scale-check`` kept health checks
            waiting about 5 s).
        socketio_stickiness: ``cookie`` (HAProxy inserts one: browsers are spread
            over the instances and stay on theirs) or ``source`` (the client's
            address, for clients without cookies).
        database_user: The PostgreSQL role Rasa and the action servers log in as.
        tracker_database: Rasa's tracker store database.
        shop_database: The action server's shop database.
        health_interval_ms: HAProxy's health checks; three failures take a server out.
        health_timeout_s: How long a check waits for an answer. A killed server
            refuses at once, whatever this is; a busy one answers late, as its event
            loop runs a turn's synchronous work (inference, the SQL tracker store)
            first: measured, 128 customers on two instances kept checks waiting over
            5 s, and a 5 s timeout took both instances out (HAProxy then answered
            every customer 503). So the timeout is long, and only refusals are fast.
    """

    work_dir: Path = SCALE_DIR / "stack"
    secrets_dir: Path = SECRETS_DIR
    model: Path = ROOT / "models" / "assistant.tar.gz"
    credentials: Path = ROOT / "credentials.yml"
    rasa_instances: int = 2
    action_servers: int = 2
    base_port: int = 8005
    lock_lifetime_s: int = 20
    socketio_stickiness: str = "cookie"
    database_user: str = "assistant"
    tracker_database: str = "rasa_tracker"
    shop_database: str = "shop"
    health_interval_ms: int = 1000
    health_timeout_s: int = 30
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.rasa_instances <= 16:
            raise ScaleError(f"rasa_instances={self.rasa_instances}: use 1 to 16")
        if not 1 <= self.action_servers <= 16:
            raise ScaleError(f"action_servers={self.action_servers}: use 1 to 16")
        if self.socketio_stickiness not in STICKINESS:
            raise ScaleError(f"socketio_stickiness={self.socketio_stickiness!r}: use one of "
                             f"{STICKINESS}")
        if not 5 <= self.lock_lifetime_s <= 600:
            raise ScaleError(f"lock_lifetime_s={self.lock_lifetime_s}: use 5 to 600 seconds")
        if not 1 <= self.health_timeout_s <= 300:
            raise ScaleError(f"health_timeout_s={self.health_timeout_s}: use 1 to 300 seconds")
        if self.base_port and not 1024 <= self.base_port <= 65535 - 60:
            raise ScaleError(f"base_port={self.base_port}: use 1024-65475, or 0 for free ports")
        for name in (self.database_user, self.tracker_database, self.shop_database):
            # Interpolated into SQL identifiers and configuration: plain names only.
            if not (name.isascii() and name.replace("_", "a").isalnum() and name[0].isalpha()):
                raise ScaleError(f"{name!r}: database and role names are letters, digits, _")
        try:
            self.work_dir.resolve().relative_to(ROOT.resolve())
            inside = True
        except ValueError:
            inside = False
        if inside and not self.work_dir.resolve().is_relative_to(SCALE_DIR.resolve()):
            # The cluster and logs must never land among tracked files.
            raise ScaleError(f"work_dir {self.work_dir}: inside the project, use {SCALE_DIR}/")

    def ports(self) -> Ports:
        """The ports: fixed from ``base_port``, or free ones when it is 0."""
        if self.base_port:
            return Ports.from_base(self.base_port, self.rasa_instances, self.action_servers)
        return Ports.free(self.rasa_instances, self.action_servers)


# -- secrets ------------------------------------------------------------------------------


def _check_secret(name: str, value: str, where: str) -> str:
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH:
        raise ScaleError(f"{name} from {where} is shorter than {MIN_SECRET_LENGTH} characters; "
                         f"remove it to have a new one generated")
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise ScaleError(f"{name} from {where} holds spaces or control characters")
    return value


def read_secret_file(path: Path, name: str) -> str:
    """A secret from its file, refused when other users could read it.

    Raises:
        ScaleError: The file is readable or writable by group or others, or the
            secret is too short.
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ScaleError(f"{path} is readable by other users (mode {mode:o}); "
                         f"chmod 600 {path}")
    return _check_secret(name, path.read_text(), str(path))


def load_secrets(directory: Path, environ: Mapping[str, str], *,
                 must_exist: Collection[str] = ()) -> dict[str, str]:
    """Every secret of :data:`SECRET_FILES`: from the environment, else its file.

    A missing file is generated (mode 0600, as ``make run`` does), except for the
    names in ``must_exist``: those already protect data (a PostgreSQL cluster
    made with that password), and a new one would lock the stack out of it.

    Raises:
        MissingSecret: A name in ``must_exist`` has neither a variable nor a file.
        ScaleError: A secret is too short, or its file is readable by others.
    """
    found: dict[str, str] = {}
    for name, filename in SECRET_FILES.items():
        if environ.get(name):
            found[name] = _check_secret(name, environ[name], "the environment")
            continue
        path = directory / filename
        if not path.exists():
            if name in must_exist:
                raise MissingSecret(
                    f"{name} is not set and {path} is missing, but the data it protects "
                    f"exists; restore the file, or delete the stack's work directory to "
                    f"start again with new data")
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
        found[name] = read_secret_file(path, name)
    return found


def scram_verifier(password: str, salt: bytes, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of ``password`` (RFC 5802/7677).

    ``CREATE ROLE ... PASSWORD '<verifier>'`` stores it as is, so the password
    itself never reaches the server, its log or its statement statistics.
    """
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    encode = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{encode(salt).decode()}"
            f"${encode(stored_key).decode()}:{encode(server_key).decode()}")


# -- generated files ----------------------------------------------------------------------


def shop_database_url(config: StackConfig, ports: Ports, password: str) -> str:
    """``SHOP_DATABASE_URL`` for the action servers (asyncpg), password quoted."""
    from sqlalchemy.engine import URL

    return URL.create("postgresql+asyncpg", username=config.database_user, password=password,
                      host="127.0.0.1", port=ports.postgres,
                      database=config.shop_database).render_as_string(hide_password=False)


def tracker_database_url(config: StackConfig, ports: Ports, password: str) -> str:
    """The tracker store as a psycopg2 URL (the checks read conversations back)."""
    from sqlalchemy.engine import URL

    return URL.create("postgresql+psycopg2", username=config.database_user, password=password,
                      host="127.0.0.1", port=ports.postgres,
                      database=config.tracker_database).render_as_string(hide_password=False)


def render_endpoints(config: StackConfig, ports: Ports) -> str:
    """Rasa's ``endpoints.yml``: the action back end of the balancer, the tracker store
    on PostgreSQL, the lock store on Redis. Passwords stay ``${VAR}``s, which Rasa
    fills from its environment."""
    return (
        "# Generated by deploy/config.py for `make scale`; the passwords come from the\n"
        "# environment of each Rasa instance.\n"
        "action_endpoint:\n"
        f'  url: "http://127.0.0.1:{ports.actions_balancer}/webhook"\n'
        "tracker_store:\n"
        # Rasa's SQL store, but a database failure fails the turn (the client resends
        # it) instead of Rasa keeping the turn in memory only (bot/tracker_store.py).
        "  type: bot.tracker_store.StrictSQLTrackerStore\n"
        '  dialect: "postgresql"\n'
        '  url: "127.0.0.1"\n'
        f"  port: {ports.postgres}\n"
        f'  db: "{config.tracker_database}"\n'
        f'  username: "{config.database_user}"\n'
        # Unquoted: Rasa's YAML reader fills in ${VAR} in plain scalars only.
        f"  password: ${{{POSTGRES_PASSWORD}}}\n"
        "lock_store:\n"
        # Rasa's Redis lock store, its ticket steps atomic across the instances
        # (bot/lock_store.py): Rasa's own can let two instances hold one lock.
        "  type: bot.lock_store.AtomicRedisLockStore\n"
        '  url: "127.0.0.1"\n'
        f"  port: {ports.redis}\n"
        f"  password: ${{{REDIS_PASSWORD}}}\n"
        "  db: 1\n"
        '  key_prefix: "scale"\n')


def render_redis_conf(ports: Ports, data_dir: Path, password: str) -> str:
    """redis.conf: loopback only, a password, nothing persisted (locks are short-lived).

    The file holds the password (Redis reads no other way without ``ps`` showing
    it), so the stack writes it with mode 0600.
    """
    return (f"bind 127.0.0.1\nport {ports.redis}\nprotected-mode yes\n"
            f"requirepass {password}\n"
            f'dir "{data_dir}"\nsave ""\nappendonly no\ndaemonize no\n')


def render_postgresql_conf(port: int, socket_dir: Path) -> str:
    """The settings appended to the cluster's postgresql.conf."""
    return ("\n# make scale (deploy/config.py)\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{socket_dir}'\n"
            "password_encryption = 'scram-sha-256'\n"
            # Two Rasa pools (only one connection each in use at a time: Rasa's SQL
            # tracker store is synchronous) and two asyncpg pools of 5 + 10.
            "max_connections = 200\n"
            "log_line_prefix = '%m [%p] %q%u@%d '\n")


def render_pg_hba() -> str:
    """pg_hba.conf: passwords over TCP from loopback; the local socket only for the
    cluster's owner (the stack's own set-up: roles and databases)."""
    return ("# make scale (deploy/config.py)\n"
            "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
            "local   all       all                 peer\n"
            "host    all       all   127.0.0.1/32  scram-sha-256\n")


def render_haproxy(config: StackConfig, ports: Ports, admin_socket: Path) -> str:
    """haproxy.cfg: the Rasa instances and the action servers behind one HAProxy.

    - ``rasa``: REST and the HTTP API, ``leastconn`` (a turn takes from 50 ms to
      seconds, so counting requests spreads better than taking turns). A request
      is retried elsewhere only when it could not be sent (``conn-failure``): a
      turn is not idempotent, so a turn cut off by a dying instance is answered
      with a 502/503 for the client to resend (benchmarks/scale.py measures that).
    - ``rasa_socketio``: the web chat's socket.io, sticky to one instance (its
      sessions live in that process's memory) by a cookie or the source address.
    - ``actions``: Rasa's action calls, also retried on another action server when
      one died before answering (``empty-response``): the actions of a turn run
      again, which the shop's actions tolerate (reads; writes are keyed by
      conversation); the request is buffered for that, hence ``tune.bufsize``
      (each call carries the domain and the tracker).
    """
    check = (f"inter {config.health_interval_ms} fastinter {config.health_interval_ms // 2} "
             f"downinter {config.health_interval_ms} fall 3 rise 2")
    rasa_servers = "\n".join(
        f"    server rasa{i + 1} 127.0.0.1:{port} check {check}"
        for i, port in enumerate(ports.rasa))
    sticky_servers = "\n".join(
        f"    server rasa{i + 1} 127.0.0.1:{port} check {check}"
        + (f" cookie rasa{i + 1}" if config.socketio_stickiness == "cookie" else "")
        for i, port in enumerate(ports.rasa))
    action_servers = "\n".join(
        f"    server actions{i + 1} 127.0.0.1:{port} check {check}"
        for i, port in enumerate(ports.actions))
    if config.socketio_stickiness == "cookie":
        stickiness = ("    balance leastconn\n"
                      "    cookie SCALE_RASA insert indirect nocache httponly\n")
    else:
        stickiness = "    balance source\n    hash-type consistent\n"
    socketio_acl = " ".join(f"path_beg {path}" for path in SOCKETIO_PATHS)
    return f"""# Generated by deploy/config.py for `make scale`; edit StackConfig, not this file.
global
    log stdout format raw local0 info
    maxconn 4096
    stats socket {admin_socket} mode 600 level admin
    # Room for a whole action call (domain + tracker), so it can be retried.
    tune.bufsize 262144

defaults
    mode http
    log global
    option httplog
    option dontlognull
    # A retry goes to another server every time (the default waits for the last).
    option redispatch 1
    retries 3
    timeout connect 2s
    timeout client 180s
    timeout server 180s
    timeout tunnel 1h
    timeout check {config.health_timeout_s}s

frontend chat
    bind 127.0.0.1:{ports.balancer}
    acl socketio {socketio_acl}
    use_backend rasa_socketio if socketio
    default_backend rasa

backend rasa
    balance leastconn
    retry-on conn-failure
    option httpchk GET /
    http-check expect status 200
{rasa_servers}

backend rasa_socketio
{stickiness}    retry-on conn-failure
    option httpchk GET /
    http-check expect status 200
{sticky_servers}

frontend actions
    bind 127.0.0.1:{ports.actions_balancer}
    default_backend actions

backend actions
    balance leastconn
    retry-on conn-failure empty-response
    option httpchk GET /health
    http-check expect status 200
{action_servers}

listen stats
    bind 127.0.0.1:{ports.stats}
    stats enable
    stats uri /
    stats refresh 5s
"""


def server_env(config: StackConfig, ports: Ports, found: Mapping[str, str]) -> dict[str, str]:
    """What every Rasa instance gets in its environment (besides the usual)."""
    return {POSTGRES_PASSWORD: found[POSTGRES_PASSWORD], REDIS_PASSWORD: found[REDIS_PASSWORD],
            JWT_SECRET: found[JWT_SECRET], WEBCHAT_SECRET: found[WEBCHAT_SECRET],
            "TICKET_LOCK_LIFETIME": str(config.lock_lifetime_s), **config.extra_env}


def actions_env(config: StackConfig, ports: Ports, found: Mapping[str, str]) -> dict[str, str]:
    """What every action server gets in its environment."""
    return {"SANIC_HOST": "127.0.0.1",
            "SHOP_DATABASE_URL": shop_database_url(config, ports, found[POSTGRES_PASSWORD]),
            # /model/parse through the balancer: any instance answers it.
            "RASA_URL": f"http://127.0.0.1:{ports.balancer}",
            JWT_SECRET: found[JWT_SECRET],
            # The schema is migrated once by the stack before the servers start.
            "SHOP_SEED_DEMO_DATA": "false", **config.extra_env}
