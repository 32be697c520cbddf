"""The stack's own PostgreSQL cluster, in its git-ignored work directory.

Debian's PostgreSQL binaries run the cluster; PostgreSQL refuses to run as root,
so under root every server command runs as the ``postgres`` user (``runuser``),
which owns the cluster's directory. The cluster listens on 127.0.0.1 only, asks
for a SCRAM password over TCP, and lets only its owner in through its own Unix
socket (``peer``), which is how the stack creates the role and the databases.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.config import ScaleError, render_pg_hba, render_postgresql_conf, scram_verifier

OS_USER_WHEN_ROOT = "postgres"


def find_bindir(candidates: Sequence[Path] | None = None) -> Path:
    """The newest installed PostgreSQL's ``bin`` directory (Debian keeps it off PATH).

    Raises:
        ScaleError: No PostgreSQL server is installed (``make scale-packages``).
    """
    if candidates is None:
        candidates = list(Path("/usr/lib/postgresql").glob("*/bin"))
    found = [path for path in candidates if (path / "pg_ctl").exists()]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)

    if found:
        return max(found, key=version)
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise ScaleError("PostgreSQL is not installed; `make scale-packages` installs Debian's")


def as_owner(command: Sequence[str], euid: int | None = None) -> list[str]:
    """``command`` as the cluster's owner: ``postgres`` under root, else ourselves."""
    if (os.geteuid() if euid is None else euid) == 0:
        return ["runuser", "-u", OS_USER_WHEN_ROOT, "--", *command]
    return list(command)


@dataclass(frozen=True)
class Cluster:
    """One PostgreSQL cluster under ``root``.

    Attributes:
        root: Its directory (data, socket, log), owned by the cluster's OS user.
        port: The TCP port on 127.0.0.1.
        bindir: PostgreSQL's programs.
    """

    root: Path
    port: int
    bindir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "log" / "postgresql.log"

    def exists(self) -> bool:
        """Whether the cluster was created already."""
        return (self.data_dir / "PG_VERSION").is_file()

    def _run(self, *args: str, stdin: str | None = None, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess:
        command = as_owner([str(self.bindir / args[0]), *args[1:]])
        result = subprocess.run(command, input=stdin, capture_output=True, text=True,
                                timeout=timeout, cwd="/")
        if check and result.returncode != 0:
            raise ScaleError(f"{args[0]} failed ({result.returncode}): "
                             f"{(result.stderr or result.stdout).strip()[-800:]}")
        return result

    def init(self, superuser: str | None = None) -> None:
        """Creates the cluster (``initdb``) with the stack's settings."""
        for directory in (self.data_dir, self.socket_dir, self.log.parent):
            directory.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if os.geteuid() == 0:
            shutil.chown(self.root, OS_USER_WHEN_ROOT, OS_USER_WHEN_ROOT)
            for path in self.root.rglob("*"):
                shutil.chown(path, OS_USER_WHEN_ROOT, OS_USER_WHEN_ROOT)
        owner = superuser or (OS_USER_WHEN_ROOT if os.geteuid() == 0 else getpass.getuser())
        self._run("initdb", "-D", str(self.data_dir), "-U", owner, "--encoding=UTF8",
                  "--locale=C", "--auth-local=peer", "--auth-host=scram-sha-256")
        conf = self.data_dir / "postgresql.conf"
        # The stack's settings live in scale.conf, rewritten at every start: the
        # checks give the same cluster a new port each time.
        self._write_as_owner(conf, conf.read_text() + "\ninclude_if_exists = 'scale.conf'\n")
        self._write_as_owner(self.data_dir / "pg_hba.conf", render_pg_hba())

    @staticmethod
    def _write_as_owner(path: Path, text: str) -> None:
        path.write_text(text)
        if os.geteuid() == 0:
            shutil.chown(path, OS_USER_WHEN_ROOT, OS_USER_WHEN_ROOT)
        path.chmod(0o600)

    def running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False
                         ).returncode == 0

    def start(self) -> None:
        """Starts the server and waits until it accepts connections."""
        self._write_as_owner(self.data_dir / "scale.conf",
                             render_postgresql_conf(self.port, self.socket_dir))
        self._run("pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log), "-w",
                  "-t", "60")

    def stop(self, mode: str = "fast") -> None:
        """Stops the server (``fast``: open sessions are cut, as in a crash of the
        clients' network; the data is flushed)."""
        if self.exists() and self.running():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60")

    def restart(self, down_s: float) -> tuple[float, float]:
        """Stops the server, keeps it down ``down_s`` seconds, starts it again.

        Returns:
            The seconds it was unreachable for (stop to accepting connections) and
            the moment it began, as ``time.monotonic()``.
        """
        began = time.monotonic()
        self.stop("fast")
        time.sleep(down_s)
        self.start()
        return time.monotonic() - began, began

    def sql(self, statements: str, database: str = "postgres") -> str:
        """Runs SQL as the cluster's owner through its socket; returns psql's output.

        The SQL goes through standard input, never the command line.
        """
        result = self._run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-h", str(self.socket_dir), "-p", str(self.port), "-d", database,
                           stdin=statements)
        return result.stdout

    def ensure_role(self, role: str, password: str, databases: Sequence[str]) -> None:
        """Creates (or updates) the login role and the databases it owns."""
        verifier = scram_verifier(password, os.urandom(16))
        script = [
            f"SELECT 'CREATE ROLE {role} LOGIN' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{role}')\\gexec",
            f"ALTER ROLE {role} LOGIN PASSWORD '{verifier}';",
        ]
        for database in databases:
            script.append(f"SELECT 'CREATE DATABASE {database} OWNER {role}' WHERE NOT EXISTS "
                          f"(SELECT FROM pg_database WHERE datname = '{database}')\\gexec")
        self.sql("\n".join(script) + "\n")

