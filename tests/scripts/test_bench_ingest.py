"""The ingest benchmark's own HTTP/1.1 client, against a scripted server on a loopback port.

The server (asyncio streams, in a thread with its own loop) records every request it reads and
answers as each test scripts it: keep-alive with Content-Length, chunked, `Connection: close`,
dropping the connection before answering, or garbage. No timed assertions: the run of each test
ends when its request budget is spent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from scripts.bench import ingest
from scripts.bench.server import Server

TOKEN = "test-token"
REQUESTS = 24
BODY = b'{"position": 7}'


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


# An answer script: given the request and how often its Idempotency-Key was seen (1 the first
# time), the bytes to send back, or None to drop the connection without answering.
Script = Callable[[Seen, int], "bytes | None"]


def length_answer(_: Seen, __: int) -> bytes:
    return b"HTTP/1.1 201 Created\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY)


@dataclass
class ScriptedServer:
    script: Script
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
                method, path, version = request_line.split(" ")
                assert version == "HTTP/1.1"
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers["content-length"]))
                seen = Seen(method, path, headers, body)
                self.requests.append(seen)
                keys_seen = sum(
                    1
                    for r in self.requests
                    if r.headers["idempotency-key"] == headers["idempotency-key"]
                )
                answer = self.script(seen, keys_seen)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.lower():
                    return
        finally:
            writer.close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], ScriptedServer]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    servers: list[asyncio.AbstractServer] = []

    def start(script: Script) -> ScriptedServer:
        state = ScriptedServer(script)

        async def serve() -> asyncio.AbstractServer:
            return await asyncio.start_server(state.handle, "127.0.0.1", 0)

        server = asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)
        servers.append(server)
        state.port = server.sockets[0].getsockname()[1]
        return state

    yield start

    async def shut_down() -> None:
        for server in servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(shut_down(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def run(state: ScriptedServer, clients: int = 4) -> dict:
    server = Server(f"http://127.0.0.1:{state.port}", TOKEN, 0)
    target = ingest.IngestTarget(["B0001", "B0002", "B0003"], itertools.count())
    return ingest.measure(server, target, clients=clients, requests=REQUESTS, max_s=600.0)


def test_keep_alive_requests_are_well_formed(scripted) -> None:
    state = scripted(length_answer)
    result = run(state, clients=4)
    assert result["statuses"] == {"201": REQUESTS}
    assert result["requests_ok"] == REQUESTS and result["requests_failed"] == 0
    assert result["requests_retried"] == 0 and result["samples"] == REQUESTS
    assert state.connections == 4  # one keep-alive connection per client
    assert len(state.requests) == REQUESTS
    assert len({r.headers["idempotency-key"] for r in state.requests}) == REQUESTS
    paths = Counter(r.path for r in state.requests)
    assert paths == {"/v1/members": REQUESTS // 2, "/v1/funds/dues": REQUESTS // 2}
    for r in state.requests:
        assert r.method == "POST"
        assert r.headers["host"] == f"127.0.0.1:{state.port}"
        assert r.headers["authorization"] == f"Bearer {TOKEN}"
        assert r.headers["content-type"] == "application/json"
        body = json.loads(r.body)
        if r.path == "/v1/members":
            assert body["organization_code"] in {"B0001", "B0002", "B0003"}
            assert len(body["id_number"]) == 18
        else:
            assert body["amount"] == ingest.DUES_AMOUNT


def test_chunked_answers(scripted) -> None:
    def chunked(_: Seen, __: int) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'5;ext=1\r\n{"pos\r\nA\r\nition": 7}\r\n0\r\nX-Trailer: 1\r\n\r\n'
        )

    state = scripted(chunked)
    result = run(state, clients=2)
    assert result["statuses"] == {"200": REQUESTS}
    assert state.connections == 2


def test_connection_close_reconnects(scripted) -> None:
    def closing(_: Seen, __: int) -> bytes:
        return b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (
            len(BODY),
            BODY,
        )

    state = scripted(closing)
    result = run(state, clients=3)
    assert result["statuses"] == {"201": REQUESTS}
    assert result["requests_retried"] == 0
    assert state.connections == REQUESTS


def test_a_dropped_request_is_sent_again_with_the_same_key(scripted) -> None:
    def drop_first(seen: Seen, times: int) -> bytes | None:
        return None if times == 1 else length_answer(seen, times)

    state = scripted(drop_first)
    result = run(state, clients=3)
    assert result["statuses"] == {"201": REQUESTS}
    assert result["requests_retried"] == REQUESTS
    sent = Counter(r.headers["idempotency-key"] for r in state.requests)
    assert len(sent) == REQUESTS and set(sent.values()) == {2}
    by_key: dict[str, set[bytes]] = {}
    for r in state.requests:
        by_key.setdefault(r.headers["idempotency-key"], set()).add(r.body)
    assert all(len(bodies) == 1 for bodies in by_key.values())


def test_a_request_that_never_gets_an_answer_fails(scripted) -> None:
    state = scripted(lambda _, __: None)
    result = run(state, clients=2)
    assert result["statuses"] == {str(ingest.NO_ANSWER): REQUESTS}
    assert result["requests_ok"] == 0 and result["requests_failed"] == REQUESTS
    assert result["requests_retried"] == REQUESTS * (ingest.ATTEMPTS - 1)
    assert len(state.requests) == REQUESTS * ingest.ATTEMPTS


def test_an_answer_that_is_not_http_fails_the_run(scripted) -> None:
    state = scripted(lambda _, __: b"SMTP ready\r\n\r\n")
    with pytest.raises(ingest.ProtocolError):
        run(state, clients=1)
