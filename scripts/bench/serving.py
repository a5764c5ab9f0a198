"""Two ways to run two HTTP processes, side by side in one sitting, under the ingest load.

    python -m scripts.bench.serving [--backend postgres|sqlite] [--seconds S] [--rounds N]

- `ledger serve --workers 2` (scripts/server/http_processes.py) with its projection process.
  Up to commit b693e2d each of its HTTP processes listened on a socket of its own on the port
  (SO_REUSEPORT); measured with this script against the plain way below, that did not pay,
  and it now runs uvicorn's own manager too (docs/operations.md has the figures). What is
  left to measure is what `ledger serve` adds (JSON logs, metrics directory, parent watch).
- `uvicorn --workers 2`: plain uvicorn's own process manager on the same application
  (`uvicorn --factory api.app:create_app --workers 2`): one listening socket shared by both
  processes; plus `ledger project` beside it, for the same one catch-up loop.

Both get the same store (a county with 20 base unions, founded here), the same token, and the
ingest benchmark's client (scripts/bench/ingest.py: joins and dues alternately, each client on
a keep-alive connection of its own, opened together) at 16 and 64 clients. The designs take
turns, round after round, so that a machine slowing down during the sitting weighs on both.
Prints one JSON object per measurement and a table at the end.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from scripts.bench import ingest
from scripts.bench.database import BenchStore, bench_store
from scripts.bench.server import HOST, REPO_ROOT, Server, free_port, mint_admin_token
from scripts.demo_data import DEMO_YEAR
from scripts.synthetic import employer_code, union_code
from service.application import Ledger
from service.commands import FoundOrganization

REGION = "110105"  # 北京市朝阳区
BASE_UNIONS = 20
START_TIMEOUT_S = 60.0
DESIGNS = ("ledger serve --workers 2", "uvicorn --workers 2")


def found_county(ledger: Ledger) -> list[str]:
    """A county union with BASE_UNIONS base unions under it; their codes."""
    founded_on = f"{DEMO_YEAR}-01-02"
    county = union_code(REGION, 1, base=False)
    ledger.execute(
        FoundOrganization(
            code=county,
            name="朝阳区总工会",
            level="county",
            parent_code=None,
            region_code=REGION,
            founded_on=founded_on,
        )
    )
    codes = []
    for serial in range(2, 2 + BASE_UNIONS):
        code = union_code(REGION, serial, base=True)
        ledger.execute(
            FoundOrganization(
                code=code,
                name=f"测试基层工会{serial}",
                level="base",
                parent_code=county,
                region_code=REGION,
                founded_on=founded_on,
                employer_code=employer_code(REGION, serial),
                employee_count=10_000,
            )
        )
        codes.append(code)
    return codes


def _commands(design: str, port: int) -> list[list[str]]:
    ledger = [sys.executable, "-m", "scripts.cli"]
    if design == DESIGNS[0]:
        return [[*ledger, "serve", "--host", HOST, "--port", str(port), "--workers", "2"]]
    return [
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.app:create_app",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            "2",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        [*ledger, "project"],
    ]


@contextmanager
def running(design: str, store: BenchStore, token: str) -> Iterator[Server]:
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="ledger-bench-metrics-")
    env = {**os.environ, **store.environment()}
    if design == DESIGNS[1]:
        # What `ledger serve` sets up for its own processes.
        env |= {"LEDGER_PROJECTION_THREAD": "false", "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    log = store.workdir / f"{design.split()[0]}-{port}.log"
    procs = []
    with log.open("ab") as out:
        for command in _commands(design, port):
            procs.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=out))
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"{design} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        time.sleep(1.0)  # both HTTP processes up, not only the first to answer
        yield Server(url, token, procs[0].pid)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def compare(backend: str, admin_url: str, seconds: float, rounds: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    serials = itertools.count()
    with tempfile.TemporaryDirectory() as tmp, bench_store(backend, admin_url, Path(tmp)) as store:
        ledger = Ledger(store.settings)
        try:
            codes = found_county(ledger)
            token = mint_admin_token(ledger)
        finally:
            ledger.close()
        target = ingest.IngestTarget(codes, serials)
        for round_ in range(1, rounds + 1):
            designs = DESIGNS if round_ % 2 else DESIGNS[::-1]
            for design in designs:
                with running(design, store, token) as server:
                    # Warm-up: every process has verified the token and loaded the unions.
                    ingest.measure(server, target, clients=16, requests=400, max_s=seconds)
                    for clients in (16, 64):
                        figures = ingest.measure(
                            server, target, clients=clients, requests=10**6, max_s=seconds
                        )
                        row = {"design": design, "round": round_, **figures}
                        print(json.dumps(row), flush=True)
                        results.append(row)
    return results


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| design | clients | requests/s (each round) | p50 ms | p99 ms | failed |",
        "|---|---|---|---|---|---|",
    ]
    for design in DESIGNS:
        for clients in (16, 64):
            rows = [r for r in results if r["design"] == design and r["clients"] == clients]
            rates = " / ".join(f"{r['events_per_s']:.0f}" for r in rows)
            p50 = " / ".join(f"{r['ms_p50']:.0f}" for r in rows)
            p99 = " / ".join(f"{r['ms_p99']:.0f}" for r in rows)
            failed = sum(r["requests_failed"] for r in rows)
            lines.append(f"| {design} | {clients} | {rates} | {p50} | {p99} | {failed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "LEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    results = compare(args.backend, args.database_url, args.seconds, args.rounds)
    print(f"\n{started}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    print(table(results))


if __name__ == "__main__":
    main()
