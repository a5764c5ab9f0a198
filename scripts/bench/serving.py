"""HTTP servers side by side in one sitting, under the ingest load, on the same application.

    python -m scripts.bench.serving [--backend postgres|sqlite] [--seconds S] [--rounds N]
        [--workers N] [--designs "uvicorn --workers 2" "granian --workers 2" ...]

- `ledger serve --workers N` (scripts/server/http_processes.py: uvicorn's own process manager)
  with its projection process. Up to commit b693e2d each of its HTTP processes listened on a
  socket of its own on the port (SO_REUSEPORT); measured with this script against plain
  uvicorn, that did not pay (docs/operations.md has the figures).
- `uvicorn --workers N`: plain uvicorn's own process manager on the same application
  (`uvicorn --factory api.app:create_app --workers N`): one listening socket shared by the
  processes; plus `ledger project` beside it, for the same one catch-up loop.
- `granian --workers N`: granian (an ASGI server whose HTTP layer is in Rust, from PyPI), the
  same factory, the same `ledger project` beside it: the server is all that differs from the
  design above. The bench's test extra installs it; missing, its design is skipped.

All get the same store (a county with 20 base unions, founded here), the same token, and the
ingest benchmark's client (scripts/bench/ingest.py: joins and dues alternately, each client on
a keep-alive connection of its own, opened together) at 16 and 64 clients, and then a trivial
endpoint (GET /healthz, the same client: the server and framework answering nothing, the floor
of a request's cost in that design). The designs take turns, round after round, so that a
machine slowing down during the sitting weighs on both. Prints one JSON object per
measurement and a table at the end; `ledger bench` runs compare() for its `serving` keys.
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from scripts.bench import baseline, ingest
from scripts.bench.config import BenchConfig
from scripts.bench.database import BenchStore, bench_store
from scripts.bench.server import HOST, REPO_ROOT, Server, free_port, mint_admin_token
from scripts.demo_data import DEMO_YEAR
from scripts.synthetic import employer_code, union_code
from service.application import Ledger
from service.commands import FoundOrganization

REGION = "110105"  # 北京市朝阳区
BASE_UNIONS = 20
START_TIMEOUT_S = 60.0
SERVERS = ("ledger serve", "uvicorn", "granian")
TRIVIAL_PATH = "/healthz"
TRIVIAL_S = 4.0  # per trivial measurement: the rate settles within a second or two


def design(server: str, workers: int) -> str:
    return f"{server} --workers {workers}"


def server_of(name: str) -> str:
    return name.rsplit(" --workers ", 1)[0]


def workers_of(name: str) -> int:
    return int(name.rsplit(" --workers ", 1)[1])


def available(name: str) -> bool:
    """Whether the design's server is installed (granian comes with the test extra)."""
    if server_of(name) != "granian":
        return True
    import importlib.util

    return importlib.util.find_spec("granian") is not None


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


def _commands(name: str, port: int) -> list[list[str]]:
    ledger = [sys.executable, "-m", "scripts.cli"]
    server, workers = server_of(name), str(workers_of(name))
    if server == "ledger serve":
        return [[*ledger, "serve", "--host", HOST, "--port", str(port), "--workers", workers]]
    if server == "granian":
        http = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            workers,
            "--no-ws",
            "--loop",
            "uvloop",
            "--log-level",
            "warning",
            "api.app:create_app",
        ]
    else:
        http = [
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
            workers,
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    return [http, [*ledger, "project"]]


@contextmanager
def running(name: str, store: BenchStore, token: str) -> Iterator[Server]:
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="ledger-bench-metrics-")
    env = {**os.environ, **store.environment()}
    if server_of(name) != "ledger serve":
        # What `ledger serve` sets up for its own processes.
        env |= {"LEDGER_PROJECTION_THREAD": "false", "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    log = store.workdir / f"{name.split()[0]}-{port}.log"
    procs = []
    with log.open("ab") as out:
        for command in _commands(name, port):
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
                raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        time.sleep(1.0)  # every HTTP process up, not only the first to answer
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


START_ATTEMPTS = 3


@contextmanager
def started(name: str, store: BenchStore, token: str) -> Iterator[Server]:
    """running(), tried again (up to START_ATTEMPTS) when the design fails to start: on a
    machine shared with other jobs, PostgreSQL may refuse a connection for a while (`too
    many clients`), and uvicorn's manager then stops altogether."""
    with ExitStack() as stack:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                server = stack.enter_context(running(name, store, token))
                break
            except RuntimeError:
                if attempt == START_ATTEMPTS:
                    raise
                time.sleep(5.0 * attempt)
        yield server


def trivial(server: Server, *, clients: int, max_s: float) -> dict[str, Any]:
    """GET /healthz from `clients` keep-alive connections for max_s: requests/s and latency."""
    import asyncio

    from scripts.bench.stats import latency_summary, per_s

    url = httpx.URL(server.base_url)
    request = f"GET {TRIVIAL_PATH} HTTP/1.1\r\nHost: {url.netloc.decode()}\r\n\r\n".encode()
    endpoint = ingest._Endpoint(url.host, url.port or 80, {})
    latencies_ms: list[float] = []
    failed = [0]

    async def client(deadline: float) -> None:
        connection = ingest._Connection(endpoint)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    status = await connection.exchange(request)
                except ingest._Dropped:
                    status = ingest.NO_ANSWER
                if status == 200:
                    latencies_ms.append((time.perf_counter() - started) * 1000)
                else:
                    failed[0] += 1
        finally:
            await connection.close()

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(client(started + max_s) for _ in range(clients)))
        return time.perf_counter() - started

    with asyncio.Runner(loop_factory=ingest._loop_factory()) as runner:
        seconds = runner.run(run())
    return {
        "clients": clients,
        "path": TRIVIAL_PATH,
        "requests_ok": len(latencies_ms),
        "requests_failed": failed[0],
        "seconds": round(seconds, 3),
        "requests_per_s": per_s(len(latencies_ms), seconds),
        **latency_summary(latencies_ms),
    }


def measure_designs(
    store: BenchStore,
    token: str,
    target: ingest.IngestTarget,
    designs: tuple[str, ...],
    *,
    clients: tuple[int, ...],
    seconds: float,
    rounds: int,
    warm_up_per_union: int = BenchConfig.ingest_warm_up_per_union,
    note: Callable[[dict[str, Any]], None] = lambda row: None,
) -> list[dict[str, Any]]:
    """Each design in turn (the order reversed every other round), ingest at each client
    count then the trivial endpoint at the largest; one row per measurement."""
    results: list[dict[str, Any]] = []
    for round_ in range(1, rounds + 1):
        for name in designs if round_ % 2 else designs[::-1]:
            with started(name, store, token) as server:
                # Not counted: every process verifies the token and reads each union in it.
                ingest.warm_up(
                    server,
                    target,
                    clients=max(clients),
                    per_union=warm_up_per_union,
                )
                for n in clients:
                    figures = ingest.measure(
                        server, target, clients=n, requests=10**6, max_s=seconds
                    )
                    row = {"design": name, "round": round_, "load": "ingest", **figures}
                    note(row)
                    results.append(row)
                figures = trivial(server, clients=max(clients), max_s=min(seconds, TRIVIAL_S))
                row = {"design": name, "round": round_, "load": "trivial", **figures}
                note(row)
                results.append(row)
    return results


def compare(
    backend: str,
    admin_url: str,
    seconds: float,
    rounds: int,
    designs: tuple[str, ...],
    clients: tuple[int, ...] = (16, 64),
) -> list[dict[str, Any]]:
    serials = itertools.count()
    with tempfile.TemporaryDirectory() as tmp, bench_store(backend, admin_url, Path(tmp)) as store:
        ledger = Ledger(store.settings)
        try:
            codes = found_county(ledger)
            token = mint_admin_token(ledger)
        finally:
            ledger.close()
        target = ingest.IngestTarget(codes, serials)
        rows = measure_designs(
            store,
            token,
            target,
            designs,
            clients=clients,
            seconds=seconds,
            rounds=rounds,
            note=lambda row: print(json.dumps(row), flush=True),
        )
        commits = {"design": backend, "load": "commit", **commit_floor(store, seconds)}
        print(json.dumps(commits), flush=True)
        return [*rows, commits]


def commit_floor(store: BenchStore, seconds: float) -> dict[str, Any]:
    """One row per durable transaction from one client on the store's database, in the same
    sitting: what the database gives without the ledger (scripts/bench/baseline.py's
    commit_per_s, on a scratch table). Group commit answers many requests per transaction, so
    this bounds the transactions, not the requests."""
    dialect = store.dialect()
    conn = dialect.connect()
    try:
        conn.execute(f"DROP TABLE IF EXISTS {baseline.TABLE}")
        for statement in dialect.create:
            conn.execute(statement)
        conn.commit()
        payload = [("bench", bytes(252))]  # the demo store's mean stored event
        return baseline.commit_per_s(conn, dialect, payload, rows=10**6, max_s=seconds)
    finally:
        conn.rollback()
        conn.execute(f"DROP TABLE IF EXISTS {baseline.TABLE}")
        conn.commit()
        conn.close()


def summary(results: list[dict[str, Any]], clients: int) -> dict[str, Any]:
    """Per server (by its name alone: `uvicorn`, `granian`, `ledger serve` as `ledger`): the
    median over rounds of requests/s and p99 at `clients`, and of the trivial endpoint's
    requests/s. These are `ledger bench`'s `serving` keys."""
    import statistics

    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["design"] for r in results):
        key = server_of(name).split()[0]
        ingest_rows = [
            r
            for r in results
            if r["design"] == name and r["load"] == "ingest" and r["clients"] == clients
        ]
        trivial_rows = [r for r in results if r["design"] == name and r["load"] == "trivial"]

        def median(rows: list[dict[str, Any]], field: str) -> float | None:
            values = [r[field] for r in rows if r.get(field) is not None]
            return round(statistics.median(values), 1) if values else None

        out[f"{key}_rps"] = median(ingest_rows, "events_per_s")
        out[f"{key}_ms_p99"] = median(ingest_rows, "ms_p99")
        out[f"{key}_trivial_rps"] = median(trivial_rows, "requests_per_s")
    return out


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| design | load | clients | requests/s (each round) | p50 ms | p99 ms | failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["design"] for r in results):
        for load in ("ingest", "trivial"):
            for clients in sorted({r["clients"] for r in results if r["load"] == load}):
                rows = [
                    r
                    for r in results
                    if r["design"] == name and r["load"] == load and r["clients"] == clients
                ]
                if not rows:
                    continue
                rate = "events_per_s" if load == "ingest" else "requests_per_s"
                rates = " / ".join(f"{r[rate] or 0:.0f}" for r in rows)
                p50 = " / ".join(f"{r['ms_p50'] or 0:.1f}" for r in rows)
                p99 = " / ".join(f"{r['ms_p99'] or 0:.1f}" for r in rows)
                failed = sum(r["requests_failed"] for r in rows)
                lines.append(
                    f"| {name} | {load} | {clients} | {rates} | {p50} | {p99} | {failed} |"
                )
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
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--designs",
        nargs="+",
        default=None,
        help="designs to compare, e.g. 'uvicorn --workers 2' (default: every server)",
    )
    args = parser.parse_args()
    designs = tuple(args.designs or (design(s, args.workers) for s in SERVERS))
    designs = tuple(d for d in designs if available(d))
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"{started}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    results = compare(args.backend, args.database_url, args.seconds, args.rounds, designs)
    ended = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"\nended {ended}, load average {os.getloadavg()}")
    print(table(results))
    for row in results:
        if row["load"] == "commit":
            print(f"\n{row['design']}: {row['per_s']} durable commits/s, one client, one row each")


if __name__ == "__main__":
    main()
