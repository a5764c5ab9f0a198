"""Floors of the stack: what its parts cost before the ledger does any work of its own.

    python -m scripts.bench.floors [--quick] [--admin-url URL]

- http: a FastAPI endpoint that validates the body with pydantic and answers 201 with JSON,
  no database, under `uvicorn --workers 2`, driven by the ingest benchmark's own client (64
  connections, the same join and dues bodies). The most requests per second this machine
  serves through the HTTP stack the ledger is built on.
- durable_http: the same endpoints, each also storing one event-sized row (300 bytes) in
  PostgreSQL in a durable transaction of its own (an async psycopg pool of 8 connections per
  process; concurrent commits share the server's WAL flushes), and answering the row's
  position. The most single-event POSTs a second this machine serves durably through the
  stack, with no event built, decided, encrypted or projected.
- aggregate: creating one Member aggregate per row with eventsourcing (its event, the
  union's admissions), and then also mapping each event to a stored event (JSON, zlib,
  AES-GCM), on one core: the most members per second a roster import's writer could reach
  before parsing, checking, idempotency, the insert and the answer.

The ingest and import targets can be compared with these (README, "Benchmarks").
"""

from __future__ import annotations

import argparse
import base64
import datetime
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict

from scripts.bench import ingest
from scripts.bench.database import DEFAULT_ADMIN_URL, postgres_durability, scratch_database
from scripts.bench.server import HOST, REPO_ROOT, Server, free_port
from service.commands import FoundOrganization

START_TIMEOUT_S = 30.0
REGION = "110105"  # 北京市朝阳区

app = FastAPI()


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


@app.post("/v1/members", status_code=201)
async def _join(body: _Body) -> JSONResponse:
    return JSONResponse({"member_id": str(uuid.uuid4()), **body.model_dump()}, status_code=201)


@app.post("/v1/funds/dues", status_code=201)
async def _dues(body: _Body) -> JSONResponse:
    return JSONResponse({"voucher_id": str(uuid.uuid4()), **body.model_dump()}, status_code=201)


DURABLE_URL_VARIABLE = "LEDGER_FLOOR_DATABASE_URL"
DURABLE_TABLE = "floor_events"
DURABLE_POOL_SIZE = 8  # per process: 16 in all, as `ledger serve --workers 2` has
DURABLE_STATE = os.urandom(300)  # about a stored join's size
DURABLE_UNAVAILABLE = "the durable POST floor is measured on PostgreSQL only"


@asynccontextmanager
async def _durable_pool(application: FastAPI) -> AsyncIterator[None]:
    pool = AsyncConnectionPool(
        os.environ[DURABLE_URL_VARIABLE],
        min_size=DURABLE_POOL_SIZE,
        max_size=DURABLE_POOL_SIZE,
        kwargs={"autocommit": True},
        open=False,
    )
    await pool.open(wait=True)
    application.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


durable_app = FastAPI(lifespan=_durable_pool)


async def _store_one(body: _Body, kind: str) -> JSONResponse:
    # One transaction per request, committed durably (autocommit: the INSERT's own commit).
    async with durable_app.state.pool.connection() as conn:
        cursor = await conn.execute(
            f"INSERT INTO {DURABLE_TABLE} (originator_id, originator_version, topic, state)"
            " VALUES (%s, 1, %s, %s) RETURNING position",
            (uuid.uuid4(), kind, DURABLE_STATE),
        )
        row = await cursor.fetchone()
    assert row is not None
    return JSONResponse({"position": row[0], **body.model_dump()}, status_code=201)


@durable_app.post("/v1/members", status_code=201)
async def _durable_join(body: _Body) -> JSONResponse:
    return await _store_one(body, "floor:Joined")


@durable_app.post("/v1/funds/dues", status_code=201)
async def _durable_dues(body: _Body) -> JSONResponse:
    return await _store_one(body, "floor:Dues")


def http_floor(
    *,
    clients: int = 64,
    requests: int = 12_000,
    workers: int = 2,
    application: str = "scripts.bench.floors:app",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            application,
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                httpx.post(f"{url}/v1/members", json={}, timeout=2.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the floor's uvicorn did not start") from None
                time.sleep(0.2)
        time.sleep(1.0)  # every worker up
        codes = [f"floor{n:04d}" for n in range(600)]
        result = ingest.measure(
            Server(url, "unused", proc.pid),
            ingest.IngestTarget(codes, itertools.count()),
            clients=clients,
            requests=requests,
            max_s=120.0,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "workers": workers,
        **{
            k: result[k]
            for k in (
                "clients",
                "requests_ok",
                "requests_failed",
                "events_per_s",
                "ms_p50",
                "ms_p99",
                "client_cpu_share",
            )
        },
    }


def durable_http_floor(
    *, admin_url: str = DEFAULT_ADMIN_URL, clients: int = 64, requests: int = 12_000
) -> dict[str, Any]:
    """http_floor's server storing one row per request durably, in a scratch database."""
    with scratch_database(admin_url) as (_, url):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                f"CREATE TABLE {DURABLE_TABLE} (position bigserial PRIMARY KEY,"
                " originator_id uuid NOT NULL, originator_version integer NOT NULL,"
                " topic text NOT NULL, state bytea NOT NULL,"
                " UNIQUE (originator_id, originator_version))"
            )
        result = http_floor(
            clients=clients,
            requests=requests,
            application="scripts.bench.floors:durable_app",
            env={DURABLE_URL_VARIABLE: url},
        )
        with psycopg.connect(url) as conn:
            stored = conn.execute(f"SELECT count(*) FROM {DURABLE_TABLE}").fetchone()
        settings = postgres_durability(url)
    return {**result, "rows_stored": stored[0] if stored else None, **settings}


def aggregate_floor(*, members: int = 30_000) -> dict[str, Any]:
    from domain.identity import IdNumber
    from domain.members import Member
    from domain.organizations import Admissions
    from scripts.synthetic import employer_code, id_number, union_code
    from service.application import Ledger
    from storage.settings import Settings

    with tempfile.TemporaryDirectory(prefix="ledger-floor-") as tmp:
        directory = Path(tmp)
        settings = Settings(
            database_url=f"sqlite:///{directory / 'ledger.sqlite'}",
            encryption_key=base64.b64encode(os.urandom(32)).decode(),
            key_file=directory / "ledger.key",
            audit_key_file=directory / "audit.key",
            projection_thread=False,
        )
        ledger = Ledger(settings)
        try:
            root, base = union_code(REGION, 1, base=False), union_code(REGION, 2, base=True)
            ledger.execute(
                FoundOrganization(
                    code=root,
                    name="测试总工会",
                    level="county",
                    parent_code=None,
                    region_code=REGION,
                    founded_on="2024-01-02",
                )
            )
            ledger.execute(
                FoundOrganization(
                    code=base,
                    name="测试基层工会",
                    level="base",
                    parent_code=root,
                    region_code=REGION,
                    founded_on="2024-01-02",
                    employer_code=employer_code(REGION, 2),
                    employee_count=members,
                )
            )
            org = ledger.unit_of_work().org(base)
            people = [
                IdNumber.parse(
                    id_number(
                        REGION,
                        datetime.date(1965, 1, 1) + datetime.timedelta(days=n // 1000),
                        n % 1000,
                    )
                )
                for n in range(members)
            ]
            result: dict[str, Any] = {"members": members}
            for label, mapped in (("create", False), ("create_and_map", True)):
                admissions = Admissions(org)
                started = time.process_time()
                for person in people:
                    member = Member.join(
                        member_id=uuid.uuid4(),
                        id_number=person,
                        organization=org,
                        joined_on=datetime.date(2024, 3, 1),
                        admissions=admissions,
                        name="导入会员",
                        mobile="13900000000",
                        migrant_worker=False,
                        new_employment_form=False,
                    )
                    if mapped:
                        for event in member.collect_events():
                            ledger.mapper.to_stored_event(event)
                seconds = time.process_time() - started
                result[f"{label}_us_per_member"] = round(seconds / members * 1e6, 1)
                result[f"{label}_members_per_s"] = round(members / seconds)
            return result
        finally:
            ledger.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL server")
    args = parser.parse_args(argv)
    sizes = (
        {"requests": 300, "members": 300} if args.quick else {"requests": 12_000, "members": 30_000}
    )
    report = {
        "http": http_floor(requests=sizes["requests"]),
        "durable_http": durable_http_floor(admin_url=args.admin_url, requests=sizes["requests"]),
        "aggregate": aggregate_floor(members=sizes["members"]),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
