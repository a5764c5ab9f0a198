"""Bounded waits while PostgreSQL is unreachable: 503 within seconds, recovery by itself.

eventsourcing's PostgreSQL recorder retries each call 10 times on a connection error, each
waiting for the pool's timeout (about 50 s before a client hears that the database is down),
and its repository lets one thread at a time fast-forward a cached aggregate, so concurrent
requests for one organisation queue behind each other's timeouts. Here each recorder call is
tried once, and after a connection failure the recorder's calls fail at once until a direct
connection succeeds again: the first caller waits for the pool, the rest hear 503
immediately. Nothing has to be restarted: the probe that finds the database back has the pool
check its idle connections (dropping those the outage broke) before it reopens the gate.
The pool does not check each connection before lending it (pre-ping): that doubled the round
trips of every read in normal running, to catch what only happens after an outage.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import PostgresRecorder

RECORDER_METHODS = (
    "insert_events",
    "select_events",
    "select_notifications",
    "max_notification_id",
    "insert_tracking",
    "max_tracking_id",
    "has_tracking_id",
)
# The writer's turn (storage/pg_recorder.py): a transaction that decides again inside, so
# never retried by the recorder.
SINGLE_ATTEMPT_METHODS = ("write_locked",)
PROBE_INTERVAL_S = 0.25  # while down, at most one direct connection attempt this often
PROBE_CONNECT_TIMEOUT_S = 2
CONNECT_KEYS = ("dbname", "host", "port", "user", "password")


class OutageGate:
    """Whether the database is known to be unreachable, and a cheap way to find out if it
    is back (a fresh connection outside the pool, refused at once while it is down)."""

    def __init__(self, connect_kwargs: dict[str, Any], pool: Any) -> None:
        self._connect_kwargs = connect_kwargs
        self._pool = pool
        self._lock = threading.Lock()
        self._down = False
        self._probed_at = 0.0

    def check(self) -> None:
        if not self._down:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._probed_at < PROBE_INTERVAL_S:
                raise OperationalError("the database is unreachable")
            self._probed_at = now
        try:
            psycopg.connect(**self._connect_kwargs, connect_timeout=PROBE_CONNECT_TIMEOUT_S).close()
        except psycopg.Error as exc:
            raise OperationalError(f"the database is unreachable: {exc}") from exc
        self._pool.check()  # replaces the idle connections the outage broke
        self._down = False

    def failed(self) -> None:
        with self._lock:
            self._down = True
            self._probed_at = time.monotonic()


def _gated(gate: OutageGate, call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def gated(*args: Any, **kwargs: Any) -> Any:
        gate.check()
        try:
            return call(*args, **kwargs)
        except (InterfaceError, OperationalError):
            gate.failed()  # a lock timeout also lands here: the next probe reopens at once
            raise

    return gated


def bound_retries(recorder: Any) -> None:
    """Replaces the recorder's retrying methods (on this instance) by gated single attempts.
    Any PostgreSQL recorder, by class: the events' is a subclass in storage/pg_recorder.py."""
    if not isinstance(recorder, PostgresRecorder):
        return
    pool = recorder.datastore.pool
    gate = OutageGate({key: pool.kwargs[key] for key in CONNECT_KEYS if pool.kwargs.get(key)}, pool)
    for name in RECORDER_METHODS:
        inner = getattr(getattr(type(recorder), name, None), "__wrapped__", None)
        if inner is not None:  # the function under eventsourcing's @retry
            setattr(recorder, name, _gated(gate, functools.partial(inner, recorder)))
    for name in SINGLE_ATTEMPT_METHODS:  # ours, never retried: gated as they are
        method = getattr(recorder, name, None)
        if method is not None:
            setattr(recorder, name, _gated(gate, method))
