"""Real processes for the reliability scenarios: `ledger serve` and `ledger project` as
subprocesses killed with SIGKILL by their exact PID, and a private PostgreSQL cluster that the
outage scenario may stop and start (the machine's shared server is never touched).

Each subprocess runs in a session (process group) of its own, so that whatever it leaves
behind (the children of a killed server) can be found and ended when the test is over, and
each server's port is held by the test from the moment it is chosen (tests/processes.py)."""

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

from tests.processes import (
    descendants,
    eventually,
    group_members,
    listens_on,
    reserve_port,
)

ROOT = Path(__file__).resolve().parents[2]
LEDGER = str(Path(sys.executable).with_name("ledger"))


def _pg_bin() -> Path:
    """The PostgreSQL server binaries (Debian keeps them off PATH, one directory per version)."""
    if os.environ.get("LEDGER_TEST_PG_BIN"):
        return Path(os.environ["LEDGER_TEST_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60


class LedgerProcesses:
    """The environment of one deployment: every `ledger` subprocess shares it."""

    def __init__(self, database_url: str, workdir: Path, encryption_key: str | None = None) -> None:
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
        return subprocess.run(
            [LEDGER, *args],
            env=self.env,
            cwd=self.workdir,
            text=True,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )

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
        """A `ledger` subprocess in a session of its own (its process group id is its pid),
        writing to a log in the work directory."""
        with open(self.workdir / log_name, "ab") as log:  # the child keeps its own copy
            return subprocess.Popen(
                [LEDGER, *args],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def end_sessions(sessions: list[int]) -> None:
    """SIGKILL to every process left in these sessions (what a killed server left behind),
    and wait until they are gone."""
    for pgid in sessions:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # nothing left in it
    eventually(
        lambda: not any(group_members(pgid) for pgid in sessions),
        "the processes left in the test's sessions ended",
    )


class ServerProcess:
    """`ledger serve` on a loopback port held for it (see reserve_port) from construction
    until close(), across restarts. Use it as a context manager, or call close()."""

    BIND_ATTEMPTS = 3

    def __init__(self, processes: LedgerProcesses, workers: int = 1) -> None:
        self.processes = processes
        self.workers = workers
        self._port_holder = reserve_port()
        self.port = self._port_holder.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._sessions: list[int] = []

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Starts the server and returns how long it took to be ready, in seconds: one of
        its own processes listens on the port and /healthz answers."""
        for attempt in range(1, self.BIND_ATTEMPTS + 1):
            try:
                return self._start_once()
            except PortTaken:
                # Only a process that chose this port before it was reserved (a free-port
                # pick elsewhere on the machine, then an explicit bind) gets here; never on
                # a restart, whose port must stay the same.
                if self.starts > 1 or attempt == self.BIND_ATTEMPTS:
                    raise
                self.starts -= 1
                self._port_holder.close()
                self._port_holder = reserve_port()
                self.port = self._port_holder.getsockname()[1]
        raise AssertionError("unreachable")

    def _start_once(self) -> float:
        began = time.monotonic()
        log = self.processes.workdir / "server.log"
        log_from = log.stat().st_size if log.exists() else 0
        self.process = self.processes.spawn(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            log_name="server.log",
        )
        self._sessions.append(self.process.pid)
        self.starts += 1
        deadline = began + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = log.read_bytes()[log_from:].decode(errors="replace")
                if "address already in use" in said.lower() or "already listens" in said:
                    self.process = None
                    raise PortTaken(said[-3000:])
                raise RuntimeError(
                    f"ledger serve exited with {self.process.returncode}: " + said[-3000:]
                )
            # Ours, not a stranger's: /healthz alone could be answered by any server that
            # took the port.
            if self._listening() and self._healthy():
                return time.monotonic() - began
            time.sleep(0.05)
        raise RuntimeError(f"ledger serve not ready within {START_TIMEOUT_S}s: " + self.log_tail())

    def _listening(self) -> bool:
        assert self.process is not None
        return any(
            listens_on(pid, self.port) for pid in (self.process.pid, *descendants(self.process.pid))
        )

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL of exactly the process this object started: no shutdown code runs, and
        its children are left to notice by themselves."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)
        self.process = None

    def stop(self) -> None:
        """SIGTERM, as an operator stops it; SIGKILL if it has not stopped in time."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT_S)
        self.process = None

    def close(self) -> None:
        """Stops the server, ends whatever any of its runs left behind, frees the port."""
        try:
            self.stop()
            end_sessions(self._sessions)
        finally:
            self._port_holder.close()

    def log_tail(self) -> str:
        path = self.processes.workdir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class PortTaken(RuntimeError):
    """`ledger serve` could not bind its port: another process listens on it."""


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, run as the postgres user, with the
    default durability (fsync and synchronous_commit on). Only this one is ever stopped."""

    def __init__(self) -> None:
        # Held until destroy(): the port stays this cluster's while it is stopped too.
        self._port_holder = reserve_port()
        self.port = self._port_holder.getsockname()[1]
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()
        if os.geteuid() == 0:  # root may not run PostgreSQL: the postgres user does
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        conf = self.data / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write(
                "\nfsync = on\nsynchronous_commit = on\nmax_connections = 100\n"
                "shared_buffers = 32MB\n"
            )

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
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "postgres.log"),
            "-o",
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        """immediate: the server stops at once, as if it crashed; recovery replays its WAL."""
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "-m", mode, "stop"
        )

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        try:
            self.stop("fast")
        except RuntimeError:
            pass  # already stopped
        self._port_holder.close()
        shutil.rmtree(self.root, ignore_errors=True)
