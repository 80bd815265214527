"""A throwaway PostgreSQL server for tests: initdb on a temp dir, a free loopback port, stopped
at the end of the session. Skips (with the reason) where the Debian packages are not installed.

    from tests.pg import postgres_dsn          # the session fixture: "postgresql://rein@127.0.0.1:PORT/postgres"

    def test_something(postgres_dsn): ...

Outside pytest: ``with PostgresServer() as server: server.dsn``.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def find_bin() -> Path | None:
    """The directory holding initdb and pg_ctl (PATH first, then the Debian layout)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresUnavailable(RuntimeError):
    pass


class PostgresServer:
    """initdb + pg_ctl start; as the ``postgres`` user when running as root (the server refuses root)."""

    def __init__(self, user: str = "rein"):
        self.bin = find_bin()
        if self.bin is None:
            raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed "
                                      "(apt-get install postgresql)")
        self.user = user
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="rein-pg-"))
        self.data = self.root / "data"
        self.run_as: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no 'postgres' user to run the server") from None
            self.run_as = "postgres"
            shutil.chown(self.root, "postgres")
        self.dsn = f"postgresql://{user}@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.run_as:
            runner = shutil.which("runuser") or shutil.which("su")
            if runner is None:
                raise PostgresUnavailable("running as root without runuser/su to drop privileges")
            cmd = [runner, "-u", self.run_as, "--", *cmd] if runner.endswith("runuser") else \
                [runner, self.run_as, "-c", " ".join(cmd)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    def start(self) -> "PostgresServer":
        done = self._cmd("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "--no-sync", "-E", "UTF8")
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {done.stderr.strip()[-300:]}")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        done = self._cmd("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w",
                         "-t", "30", "start")
        if done.returncode != 0:
            log = (self.root / "log").read_text()[-300:] if (self.root / "log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {done.stderr.strip()[-200:]} {log}")
        return self

    def stop(self) -> None:
        if self.data.exists():
            self._cmd("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_dsn():
    """A DSN to a fresh server for the whole session, or a skip saying why there is none."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as e:
        pytest.skip(f"no PostgreSQL for this test: {e}")
    try:
        server.start()
    except PostgresUnavailable as e:
        server.stop()
        pytest.skip(f"no PostgreSQL for this test: {e}")
    try:
        yield server.dsn
    finally:
        server.stop()
