"""Ingest: single-event HTTP POSTs (入会 joins and 会费 dues receipts) from concurrent clients.

Each client is an asyncio task with its own keep-alive connection, sending one request at a time
and timing each from send to full response. A run ends when its request budget is spent or its
time bound has passed, whichever comes first. Only 2xx answers count towards the rate; the
others are reported by status. Every join is a new person: identity numbers come from a region
and serial range no other part of the run uses.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from scripts import synthetic
from scripts.bench.server import Server
from scripts.bench.stats import latency_summary, per_s
from scripts.demo_data import DEMO_YEAR

JOIN_REGION = "650102"  # 乌鲁木齐市天山区: no county of the demo plan issues numbers here
REQUEST_TIMEOUT_S = 60.0
DUES_AMOUNT = "12.50"


@dataclass
class IngestTarget:
    """Where ingest writes: base unions of the loaded deployment, and fresh identity numbers."""

    base_codes: list[str]
    serials: itertools.count

    def join_body(self) -> dict[str, Any]:
        serial = next(self.serials)
        birth = datetime.date(1970, 1, 1) + datetime.timedelta(days=serial // 1000)
        return {
            "id_number": synthetic.id_number(JOIN_REGION, birth, serial % 1000),
            "name": "压测会员", "organization_code": self.base_codes[serial % len(self.base_codes)],
            "joined_on": f"{DEMO_YEAR}-12-01", "mobile": None,
            "migrant_worker": serial % 3 == 0, "new_employment_form": serial % 7 == 0,
        }

    def dues_body(self, serial: int) -> dict[str, Any]:
        return {"organization_code": self.base_codes[serial % len(self.base_codes)],
                "period": f"{DEMO_YEAR}-12", "amount": DUES_AMOUNT,
                "received_on": f"{DEMO_YEAR}-12-20"}


async def _client(server: Server, target: IngestTarget, budget: itertools.count, limit: int,
                  deadline: float, latencies_ms: list[float], statuses: dict[int, int]) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, headers=server.headers(),
                                 timeout=REQUEST_TIMEOUT_S) as client:
        while time.perf_counter() < deadline:
            n = next(budget)
            if n >= limit:
                return
            path, body = (("/v1/members", target.join_body()) if n % 2 == 0
                          else ("/v1/funds/dues", target.dues_body(n)))
            headers = {"Idempotency-Key": f"bench-{uuid.uuid4().hex}"}
            started = time.perf_counter()
            response = await client.post(path, json=body, headers=headers)
            elapsed_ms = (time.perf_counter() - started) * 1000
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if 200 <= response.status_code < 300:
                latencies_ms.append(elapsed_ms)


async def _run(server: Server, target: IngestTarget, clients: int, requests: int,
               max_s: float) -> tuple[list[float], dict[int, int], float]:
    latencies_ms: list[float] = []
    statuses: dict[int, int] = {}
    budget = itertools.count()
    started = time.perf_counter()
    deadline = started + max_s
    await asyncio.gather(*(
        _client(server, target, budget, requests, deadline, latencies_ms, statuses)
        for _ in range(clients)
    ))
    return latencies_ms, statuses, time.perf_counter() - started


def measure(server: Server, target: IngestTarget, *, clients: int, requests: int,
            max_s: float, head: Callable[[], int] | None = None) -> dict[str, Any]:
    """One run at a number of clients. `head` returns the store's last position, so that the
    events the requests stored are counted too (a dues receipt stores a voucher and a book
    entry)."""
    before = head() if head else None
    cpu_started = time.process_time()
    latencies_ms, statuses, seconds = asyncio.run(_run(server, target, clients, requests, max_s))
    # The load generator shares the two cores with the server: near 1.0, it is the bottleneck.
    client_cpu_share = (time.process_time() - cpu_started) / seconds if seconds > 0 else None
    after = head() if head else None
    ok = len(latencies_ms)
    result: dict[str, Any] = {
        "clients": clients,
        "requests_ok": ok,
        "requests_failed": sum(c for s, c in statuses.items() if not 200 <= s < 300),
        "statuses": {str(s): c for s, c in sorted(statuses.items())},
        "seconds": round(seconds, 3),
        "events_per_s": per_s(ok, seconds),
        "client_cpu_share": None if client_cpu_share is None else round(client_cpu_share, 3),
        **latency_summary(latencies_ms),
    }
    if before is not None and after is not None:
        result["stored_events"] = after - before
        result["stored_events_per_s"] = per_s(after - before, seconds)
    return result
