"""Read latencies over HTTP, one client, one request at a time (a clerk's or auditor's view):

- statement: 工会02表 收入支出表 for a year, summed over a county's subtree;
- roll page: 100 rows of a 会员名册 as of a date, pages drawn at random;
- lookup: a member by identity number (POST /v1/members/search).

A first untimed request lets the server bring its read models up to date (writes of the
earlier measurements), so that the samples time the query, not a catch-up.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from scripts.bench.server import Server
from scripts.bench.stats import latency_summary
from scripts.demo_data import DEMO_YEAR

WARM_UP_TIMEOUT_S = 1_800.0
REQUEST_TIMEOUT_S = 60.0
ROLL_PAGE_ROWS = 100


def _sample(
    client: httpx.Client, request: Callable[[int], httpx.Request], *, samples: int, max_s: float
) -> dict[str, Any]:
    latencies_ms: list[float] = []
    failures: dict[str, int] = {}
    deadline = time.perf_counter() + max_s
    for n in range(samples):
        if time.perf_counter() > deadline:
            break
        prepared = request(n)
        started = time.perf_counter()
        response = client.send(prepared)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.status_code == 200:
            latencies_ms.append(elapsed_ms)
        else:
            failures[str(response.status_code)] = failures.get(str(response.status_code), 0) + 1
    return {**latency_summary(latencies_ms), "failures": failures}


def warm_up(server: Server, root_code: str) -> float:
    """Seconds the server took to catch its read models up before the first answer."""
    started = time.perf_counter()
    response = httpx.get(
        f"{server.base_url}/v1/organizations/{root_code}",
        headers=server.headers(),
        timeout=WARM_UP_TIMEOUT_S,
    )
    response.raise_for_status()
    return time.perf_counter() - started


def statement(server: Server, code: str, *, samples: int, max_s: float) -> dict[str, Any]:
    params = {"from": f"{DEMO_YEAR}-01-01", "to": f"{DEMO_YEAR}-12-31", "scope": "subtree"}
    with httpx.Client(
        base_url=server.base_url, headers=server.headers(), timeout=REQUEST_TIMEOUT_S
    ) as client:
        path = f"/v1/organizations/{code}/statements/income-expenditure"
        first = client.get(path, params=params)
        first.raise_for_status()
        result = _sample(
            client,
            lambda n: client.build_request("GET", path, params=params),
            samples=samples,
            max_s=max_s,
        )
    result["totals"] = first.json().get("totals")
    return result


def roll_page(
    server: Server, code: str, members: int, *, samples: int, max_s: float, seed: int = 1
) -> dict[str, Any]:
    pages = max(1, math.ceil(members / ROLL_PAGE_ROWS))
    rng = random.Random(seed)
    path = f"/v1/organizations/{code}/roll"
    as_of = f"{DEMO_YEAR}-12-31"
    with httpx.Client(
        base_url=server.base_url, headers=server.headers(), timeout=REQUEST_TIMEOUT_S
    ) as client:
        first = client.get(path, params={"as_of": as_of, "page_size": 1})
        first.raise_for_status()
        result = _sample(
            client,
            lambda n: client.build_request(
                "GET",
                path,
                params={"as_of": as_of, "page": rng.randint(1, pages), "page_size": ROLL_PAGE_ROWS},
            ),
            samples=samples,
            max_s=max_s,
        )
    result["roll_members"] = first.json().get("total")
    result["pages"] = pages
    return result


def lookup(
    server: Server, id_numbers: list[str], *, samples: int, max_s: float, seed: int = 2
) -> dict[str, Any]:
    rng = random.Random(seed)
    with httpx.Client(
        base_url=server.base_url, headers=server.headers(), timeout=REQUEST_TIMEOUT_S
    ) as client:
        return _sample(
            client,
            lambda n: client.build_request(
                "POST",
                "/v1/members/search",
                json={"id_number": rng.choice(id_numbers)},
                headers={"Idempotency-Key": f"bench-{uuid.uuid4().hex}"},
            ),
            samples=samples,
            max_s=max_s,
        )
