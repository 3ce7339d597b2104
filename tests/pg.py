"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, a free port on 127.0.0.1.

`PostgresCluster.start()` finds Debian's server binaries (`postgresql` package:
/usr/lib/postgresql/<version>/bin, installed by `scripts/install --tests`), creates a cluster with
trust authentication and durability off (fsync, full-page writes: a test cluster is
thrown away), starts it on a free loopback port with its unix socket inside the temp dir,
and `stop()` shuts it down and removes the directory. PostgreSQL refuses to run as root,
so as root the binaries run as the `postgres` user (`runuser`), which owns the temp dir.

    cluster = PostgresCluster.start()          # or None: `missing_reason()` says why
    dsn = cluster.create_database("parlour")   # postgresql+asyncpg://postgres@127.0.0.1:…/parlour
    cluster.stop()
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresCluster", "find_bindir", "missing_reason"]

SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """The newest PostgreSQL server bin directory on this machine, if any."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _run_as() -> list[str]:
    """The prefix that runs a server binary as a non-root user (empty unless root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", SUPERUSER, "--"]


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None if it can."""
    if find_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/install --tests"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return f"running as root and there is no {SUPERUSER!r} user to run PostgreSQL"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server the tests start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PostgresCluster:
    root: Path
    bindir: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _bin(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_run_as(), str(self.bindir / name), *args],
            check=True,
            capture_output=True,
            text=True,
            cwd=self.root,
        )

    @classmethod
    def start(cls, *settings: str) -> PostgresCluster:
        """initdb and start a new cluster (raises RuntimeError with the server's log).

        `settings` are extra `name=value` server settings (`-c`), after the defaults, so
        they win (e.g. `full_page_writes=on`).
        """
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError(missing_reason())
        root = Path(tempfile.mkdtemp(prefix="parlour-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster = cls(root=root, bindir=bindir, port=free_port())
        try:
            cluster._bin(
                "initdb",
                "-D",
                str(cluster.data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            )
            options = " ".join(
                [
                    f"-p {cluster.port}",
                    "-c listen_addresses=127.0.0.1",
                    f"-c unix_socket_directories={root}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=200",
                    *(f"-c {setting}" for setting in settings),
                ]
            )
            cluster._bin(
                "pg_ctl",
                "-D",
                str(cluster.data),
                "-l",
                str(root / "log"),
                "-w",
                "-o",
                options,
                "start",
            )
        except subprocess.CalledProcessError as exc:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from exc
        return cluster

    def psql(self, sql: str, database: str = SUPERUSER) -> str:
        """Run SQL through the unix socket; returns psql's unaligned output."""
        return self._bin(
            "psql", "-h", str(self.root), "-p", str(self.port), "-U", SUPERUSER,
            "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql,
        ).stdout  # fmt: skip

    def create_database(self, name: str) -> str:
        """A new empty database; returns its DSN."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        """Stop the server at once and remove its files (safe to call twice)."""
        if self.data.exists():
            pg_ctl = [*_run_as(), str(self.bindir / "pg_ctl"), "-D", str(self.data)]
            subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
