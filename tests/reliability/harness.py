"""Real processes for the reliability scenarios: `ledger serve` and `ledger project` as
subprocesses killed with SIGKILL by their exact PID, and a private PostgreSQL cluster that the
outage scenario may stop and start (the machine's shared server is never touched)."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from tests.api.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
LEDGER = str(Path(sys.executable).with_name("ledger"))

def _pg_bin() -> Path:
    """The PostgreSQL server binaries (Debian keeps them off PATH, one directory per version)."""
    if os.environ.get("LEDGER_TEST_PG_BIN"):
        return Path(os.environ["LEDGER_TEST_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
START_TIMEOUT_S = 60


class LedgerProcesses:
    """The environment of one deployment: every `ledger` subprocess shares it."""

    def __init__(self, database_url: str, workdir: Path, encryption_key: str | None = None
                 ) -> None:
        self.workdir = workdir
        self.env = {
            **os.environ,
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_ENCRYPTION_KEY": encryption_key or base64.b64encode(os.urandom(32)).decode(),
            "LEDGER_KEY_FILE": str(workdir / "unused.key"),
            "LEDGER_AUDIT_KEY_FILE": str(workdir / "audit.key"),
        }

    def run(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        # cwd is the work directory, so that no developer's .env leaks into the test.
        return subprocess.run([LEDGER, *args], env=self.env, cwd=self.workdir, text=True,
                              capture_output=True, timeout=timeout_s, check=False)

    def token(self, role: str = "admin", organization: str | None = None) -> str:
        args = ["token", "create", "--role", role]
        if organization:
            args += ["--organization", organization]
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def rebuild_check(self) -> subprocess.CompletedProcess[str]:
        return self.run("rebuild", "--check", timeout_s=300)

    def spawn(self, *args: str, log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / log_name, "ab")  # lives as long as the child
        return subprocess.Popen([LEDGER, *args], env=self.env, cwd=self.workdir,
                                stdout=log, stderr=subprocess.STDOUT)


class ServerProcess:
    """`ledger serve` on a free loopback port."""

    def __init__(self, processes: LedgerProcesses, workers: int = 1) -> None:
        self.processes = processes
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Starts the server and returns how long it took to answer /healthz, in seconds."""
        began = time.monotonic()
        self.process = self.processes.spawn("serve", "--host", "127.0.0.1", "--port",
                                            str(self.port), "--workers", str(self.workers),
                                            log_name="server.log")
        self.starts += 1
        deadline = began + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ledger serve exited with {self.process.returncode}: "
                                   + self.log_tail())
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("ledger serve did not start: " + self.log_tail())

    def kill(self) -> None:
        """SIGKILL of exactly the process this object started: no shutdown code runs."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.process = None

    def log_tail(self) -> str:
        path = self.processes.workdir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, run as the postgres user, with the
    default durability (fsync and synchronous_commit on). Only this one is ever stopped."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()
        if os.geteuid() == 0:  # root may not run PostgreSQL: the postgres user does
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8", "--no-sync")
        conf = self.data / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write("\nfsync = on\nsynchronous_commit = on\nmax_connections = 100\n"
                         "shared_buffers = 32MB\n")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                          "-l", str(self.root / "postgres.log"), "-o",
                          f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1",
                          "start")

    def stop(self, mode: str = "immediate") -> None:
        """immediate: the server stops at once, as if it crashed; recovery replays its WAL."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                          "-m", mode, "stop")

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        try:
            self.stop("fast")
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)
