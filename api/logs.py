"""Log lines as JSON objects, a request id for every HTTP request, and the access log.

Every line the server writes to stderr is one JSON object: time (UTC), level, logger,
message, request_id (null outside a request), and for the access log (logger
`ledger.access`, one line per HTTP request whatever its status) method, path (without the
query string, which may hold a name searched for), route, status, duration_ms and token_id.
Neither the token itself nor personal data is logged: messages and tracebacks go through
the same masking as problem details (domain/privacy.py).

The request id is the client's `X-Request-ID` when it is well-formed (1 to 128 letters,
digits and `._:=+/-`), else a new one; it is sent back in the response's `X-Request-ID` and
is on every line logged while the request is handled, error lines included.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import Metrics
from domain.privacy import mask_text
from storage.random_bytes import random_uuid

REQUEST_ID_HEADER = b"x-request-id"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")
ACCESS_FIELDS = ("method", "path", "route", "status", "duration_ms", "token_id")
_SCOPE_KEY = "ledger.request"

request_id: ContextVar[str | None] = ContextVar("ledger_request_id", default=None)
access_log = logging.getLogger("ledger.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_text(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        for field in ACCESS_FIELDS:
            if field in record.__dict__:
                line[field] = record.__dict__[field]
        if record.exc_info:
            line["exception"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for this process's every logger (uvicorn's included, when it
    is given log_config=None)."""
    # A line names neither the code that logged it nor the thread or process: the records
    # need not look them up (the caller's frame is found by walking the stack, for every
    # record). This is the speed advice of Python's logging documentation; an access line
    # cost the HTTP process about 27 µs with the look-ups, about 20 without.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class _Request:
    """What the access line needs to know from inside the application (the caller's
    token id): a mutable record in the request's scope, visible however the request's
    context is copied on the way in."""

    __slots__ = ("token_id",)

    def __init__(self) -> None:
        self.token_id: str | None = None


def note_token(scope: Scope, token_id: str) -> None:
    """Records the verified token's id (never the token) for the access log."""
    record = scope.get(_SCOPE_KEY)
    if isinstance(record, _Request):
        record.token_id = token_id


def _request_id_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            if _WELL_FORMED.fullmatch(text):
                return text
            break
    return random_uuid().hex


class RequestObserver:
    """Around every HTTP request, outermost (api/app.py: LedgerApp, before the short way for
    the busiest POSTs): the request id, the access log line and the metrics."""

    def __init__(self, metrics: Callable[[], Metrics]) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: Callable[[Scope, Receive, Send], Awaitable[None]] | ASGIApp,
    ) -> None:
        started = time.perf_counter()
        rid = _request_id_of(scope)
        token = request_id.set(rid)
        record = _Request()
        scope[_SCOPE_KEY] = record
        status = 500
        header = (REQUEST_ID_HEADER, rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0] != REQUEST_ID_HEADER]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics().observe(route, method, status, elapsed)
            access_log.info(
                "%s %s %s",
                method,
                scope.get("path", ""),
                status,
                extra={
                    "method": method,
                    "path": scope.get("path", ""),
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "token_id": record.token_id,
                },
            )
            request_id.reset(token)
