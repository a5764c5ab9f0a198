"""The server under test: `ledger serve` as a real subprocess on a loopback port, and a token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from scripts.bench.database import BenchStore
from service.application import Ledger
from service.tokens import Tokens

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.2
REPO_ROOT = Path(__file__).resolve().parents[2]


def run_module(module: str, *args: str, env: dict[str, str], timeout_s: float) -> str:
    """`python -m module args` from the repository, as a child process; its standard output,
    or a RuntimeError with the end of its standard error when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        what = f"{module} {args[0]}" if args else module
        raise RuntimeError(f"{what} exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


@dataclass(frozen=True)
class Server:
    base_url: str
    token: str
    pid: int

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def mint_admin_token(ledger: Ledger) -> str:
    """A deployment-wide admin token, as `ledger token create --role admin` mints it."""
    _, token = Tokens(ledger).mint(role="admin", organization_code=None, pii=False)
    return token


def _wait_until_up(proc: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"ledger serve exited with {proc.returncode}: {tail}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(POLL_S)
    raise RuntimeError(f"ledger serve did not answer /healthz within {START_TIMEOUT_S:.0f}s")


@contextmanager
def running_server(store: BenchStore, token: str, workers: int = 1) -> Iterator[Server]:
    """Starts `ledger serve` on the store, yields once it answers, and stops it (SIGTERM)."""
    port = free_port()
    env = {**os.environ, **store.environment()}
    log = store.workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scripts.cli",
                "serve",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://{HOST}:{port}"
    try:
        _wait_until_up(proc, base_url, log)
        yield Server(base_url, token, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
