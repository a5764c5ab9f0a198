"""Ingest: single-event HTTP POSTs (入会 joins and 会费 dues receipts) from concurrent clients.

Each client is an asyncio task with its own keep-alive connection, sending one request at a time
and timing each from send to full response. A run ends when its request budget is spent or its
time bound has passed, whichever comes first. Only 2xx answers count towards the rate; the
others are reported by status. Every join is a new person: identity numbers come from a region
and serial range no other part of the run uses.

The clients speak HTTP/1.1 themselves over asyncio streams, not through httpx: httpx.AsyncClient
costs 1.4-2.3 ms of CPU per request on this two-core machine, so at the 2,000 requests/s target
the load generator alone would need three cores, and it shares the two with the server it is
meant to measure. This client formats each request as one bytes object and parses only what it
needs of the answer (status line, Content-Length, Transfer-Encoding, Connection): about 0.03 ms
of CPU per request against a trivial server, 0.08 ms against `ledger serve`. It reads bodies of
Content-Length bytes (what uvicorn sends for JSON), chunked bodies, and bodies that end when the
server closes; it reconnects when the server closes the connection (`Connection: close`, or end
of stream). A request whose connection dropped before its whole answer came is sent again, with
the same Idempotency-Key (the server replays an answer it already gave), on a fresh connection;
it counts as failed, under status 0 (no HTTP answer), only when all its attempts failed that way
or its answer took longer than the request timeout. An answer that is not HTTP/1.x fails the
run. uvloop runs the event loop when it is installed.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scripts import synthetic
from scripts.bench.server import Server
from scripts.bench.stats import latency_summary, per_s
from scripts.demo_data import DEMO_YEAR

JOIN_REGION = "650102"  # 乌鲁木齐市天山区: no county of the demo plan issues numbers here
REQUEST_TIMEOUT_S = 60.0
WARM_UP_MAX_S = 120.0  # warm_up: the county's 5,600 requests (700 unions) took 6.7 s
DUES_AMOUNT = "12.50"
# A request is sent at most this many times (same Idempotency-Key) when connections drop.
ATTEMPTS = 3
NO_ANSWER = 0  # the status recorded for a request that never got an HTTP answer


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
            "name": "压测会员",
            "organization_code": self.base_codes[serial % len(self.base_codes)],
            "joined_on": f"{DEMO_YEAR}-12-01",
            "mobile": None,
            "migrant_worker": serial % 3 == 0,
            "new_employment_form": serial % 7 == 0,
        }

    def dues_body(self, serial: int) -> dict[str, Any]:
        return {
            "organization_code": self.base_codes[serial % len(self.base_codes)],
            "period": f"{DEMO_YEAR}-12",
            "amount": DUES_AMOUNT,
            "received_on": f"{DEMO_YEAR}-12-20",
        }


class ProtocolError(RuntimeError):
    """The server's answer is not HTTP/1.x this client can read: the run fails."""


class _Dropped(Exception):
    """The connection ended before the whole answer came: the request may be sent again."""


@dataclass(frozen=True)
class _Endpoint:
    """The server's address and each path's request head up to the per-request headers."""

    host: str
    port: int
    heads: dict[str, bytes]

    @classmethod
    def of(cls, server: Server, paths: tuple[str, ...]) -> _Endpoint:
        url = urlsplit(server.base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"the ingest client speaks plain http only: {server.base_url}")
        port = url.port or 80
        fixed = "".join(f"{name}: {value}\r\n" for name, value in server.headers().items())
        heads = {
            path: (
                f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n{fixed}"
                "Content-Type: application/json\r\n"
            ).encode("latin-1")
            for path in paths
        }
        return cls(url.hostname, port, heads)

    def request(self, path: str, body: dict[str, Any], key: str) -> bytes:
        data = json.dumps(body).encode()
        return b"%sContent-Length: %d\r\nIdempotency-Key: %s\r\n\r\n%s" % (
            self.heads[path],
            len(data),
            key.encode("ascii"),
            data,
        )


class _Connection:
    """One keep-alive connection, opened when needed and again after the server closed it."""

    def __init__(self, endpoint: _Endpoint) -> None:
        self.endpoint = endpoint
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()

    async def exchange(self, request: bytes) -> int:
        """Sends the request and reads the whole answer; its status. _Dropped if the connection
        ended first (the connection is then closed, and opened anew by the next call)."""
        try:
            if self.reader is None or self.reader.at_eof():
                await self.close()
                self.reader, self.writer = await asyncio.open_connection(
                    self.endpoint.host, self.endpoint.port
                )
            assert self.writer is not None
            self.writer.write(request)
            await self.writer.drain()
            status, close = await self._answer(self.reader)
        except (OSError, EOFError) as exc:  # refused, reset, broken pipe, end of stream
            if isinstance(exc, TimeoutError):
                raise
            await self.close()
            raise _Dropped(repr(exc)) from exc
        if close:
            await self.close()
        return status

    @staticmethod
    async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
        """Reads one answer (after any 1xx): its status, and whether the server closes."""
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head[:-4].split(b"\r\n")
            status_line = lines[0]
            if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
                raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
            status = int(status_line[9:12])
            if status >= 200:
                break
        length: int | None = None
        chunked = False
        close = status_line.startswith(b"HTTP/1.0")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                codings = [c.strip() for c in value.lower().split(b",")]
                if codings[-1] != b"chunked":
                    raise ProtocolError(f"unsupported Transfer-Encoding: {value!r}")
                chunked = True
            elif name == b"connection":
                tokens = [t.strip() for t in value.lower().split(b",")]
                close = b"close" in tokens or (close and b"keep-alive" not in tokens)
        if status in (204, 304):
            return status, close
        if chunked:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields
                        pass
                    return status, close
                await reader.readexactly(size)
                if await reader.readexactly(2) != b"\r\n":
                    raise ProtocolError("a chunk does not end with CRLF")
        if length is not None:
            await reader.readexactly(length)
            return status, close
        await reader.read()  # no length: the body ends when the server closes
        return status, True


async def _client(
    endpoint: _Endpoint,
    target: IngestTarget,
    budget: itertools.count,
    limit: int,
    deadline: float,
    run_id: str,
    latencies_ms: list[float],
    statuses: dict[int, int],
    retries: list[int],
) -> None:
    connection = _Connection(endpoint)
    try:
        while time.perf_counter() < deadline:
            n = next(budget)
            if n >= limit:
                return
            path, body = (
                ("/v1/members", target.join_body())
                if n % 2 == 0
                else ("/v1/funds/dues", target.dues_body(n))
            )
            request = endpoint.request(path, body, f"bench-{run_id}-{n}")
            status = NO_ANSWER
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    for attempt in range(ATTEMPTS):
                        if attempt:
                            retries[0] += 1
                        try:
                            status = await connection.exchange(request)
                            break
                        except _Dropped:
                            continue
            except TimeoutError:
                await connection.close()  # its answer may still come: not reusable
            elapsed_ms = (time.perf_counter() - started) * 1000
            statuses[status] = statuses.get(status, 0) + 1
            if 200 <= status < 300:
                latencies_ms.append(elapsed_ms)
    finally:
        await connection.close()


async def _run(
    server: Server, target: IngestTarget, clients: int, requests: int, max_s: float
) -> tuple[list[float], dict[int, int], float, int]:
    endpoint = _Endpoint.of(server, ("/v1/members", "/v1/funds/dues"))
    latencies_ms: list[float] = []
    statuses: dict[int, int] = {}
    retries = [0]
    run_id = uuid.uuid4().hex
    budget = itertools.count()
    started = time.perf_counter()
    deadline = started + max_s
    await asyncio.gather(
        *(
            _client(
                endpoint,
                target,
                budget,
                requests,
                deadline,
                run_id,
                latencies_ms,
                statuses,
                retries,
            )
            for _ in range(clients)
        )
    )
    return latencies_ms, statuses, time.perf_counter() - started, retries[0]


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def measure(
    server: Server,
    target: IngestTarget,
    *,
    clients: int,
    requests: int,
    max_s: float,
    head: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """One run at a number of clients. `head` returns the store's last position, so that the
    events the requests stored are counted too (a dues receipt stores a voucher and a book
    entry). Status 0 counts requests that got no HTTP answer; `requests_retried` counts the
    times a request was sent again after its connection dropped."""
    before = head() if head else None
    cpu_started = time.process_time()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        latencies_ms, statuses, seconds, retried = runner.run(
            _run(server, target, clients, requests, max_s)
        )
    # The load generator shares the two cores with the server: near 1.0, it is the bottleneck.
    client_cpu_share = (time.process_time() - cpu_started) / seconds if seconds > 0 else None
    after = head() if head else None
    ok = len(latencies_ms)
    result: dict[str, Any] = {
        "clients": clients,
        "requests_ok": ok,
        "requests_failed": sum(c for s, c in statuses.items() if not 200 <= s < 300),
        "requests_retried": retried,
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


def warm_up(
    server: Server, target: IngestTarget, *, clients: int, per_union: int
) -> dict[str, Any]:
    """Requests sent to a freshly started server before its rate is measured, not counted in
    it: per_union requests for each base union, at the given number of clients (enough for
    every HTTP process to get connections). A process serves its first request for a union
    only after it has read that union and its book from the store, once each; on a county
    store that first pass ran at about half the rate that follows it (docs/benchmarks.md).
    Its own figures say what the first requests after a start get. Bounded by WARM_UP_MAX_S,
    not by the measurement's time: cut short, the pass would run into what is measured."""
    requests = max(per_union * len(target.base_codes), clients)
    return {
        "requests": requests,
        **measure(server, target, clients=clients, requests=requests, max_s=WARM_UP_MAX_S),
    }
