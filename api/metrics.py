"""Prometheus metrics with prometheus_client, summed over every HTTP process of a server.

Requests are counted by route template (never the raw path, which would let clients create
unbounded label values), method and status, with a latency histogram per route and method.

One process (tests, `ledger serve --workers 1`): the metrics live in this object's own
registry. Several processes (`ledger serve --workers N`): the server's supervisor gives its
HTTP processes a fresh directory in PROMETHEUS_MULTIPROC_DIR (scripts/server/http_processes.py)
before they start; prometheus_client then keeps each process's values in files there, and a
scrape, answered by whichever process, reads and sums them all (MultiProcessCollector).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# No `_created` sample beside every counter and histogram: it doubles the exposition and tells
# nothing a scraper needs here.
disable_created_metrics()

# The group-commit writer's counters (service/group_commit.py), by its attribute names.
WRITER_COUNTERS = {
    "batches": (
        "ledger_writer_batches",
        "Batches the writers have committed (group commit).",
    ),
    "commands": ("ledger_writer_commands", "Commands in those batches."),
    "decided_again": (
        "ledger_writer_decided_again",
        "Batches decided a second time under the writer lock, because another process had "
        "changed an aggregate they read.",
    ),
    "commands_decided_again": (
        "ledger_writer_commands_decided_again",
        "Commands of those batches decided a second time (the others stood as first decided).",
    ),
    "tree_reads": (
        "ledger_writer_tree_reads",
        "Organisations, books and levy policies the writers read from the store because their "
        "tree cache did not hold them: each once after a start; a count that keeps rising "
        "month after month means the tree has outgrown LEDGER_TREE_CACHE_SIZE.",
    ),
    "snapshots_written": (
        "ledger_writer_snapshots_written",
        "Snapshots of unions and books the writers took after their batches and inserted in "
        "the background (a union or a book every 50 events).",
    ),
    "snapshots_dropped": (
        "ledger_writer_snapshots_dropped",
        "Snapshots that failed to be inserted and were dropped (each logged): reads replay "
        "more events until the next one. Rising: the snapshot table refuses writes.",
    ),
    "lock_wait_s": (
        "ledger_writer_lock_wait_seconds",
        "Seconds the writers waited for their turn (the writer lock) before writing.",
    ),
    "turn_s": (
        "ledger_writer_turn_seconds",
        "Seconds the writers held the writer lock: catching up, deciding again where another "
        "process wrote, inserting and committing. Summed over the processes, close to the "
        "time elapsed means the turns follow each other back to back: the lock bounds the rate.",
    ),
}


def multiprocess_directory() -> str | None:
    """The directory shared by the server's processes, or None in a one-process server.
    prometheus_client chooses its mode when first imported: a directory named only later
    would be ignored by this process, so that is refused."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory and values.ValueClass is values.MutexValue:
        raise RuntimeError(f"{MULTIPROC_ENV} was set after prometheus_client was imported")
    return directory or None


class _Gauges(Collector):
    """Gauges read at scrape time (the same for every process: they come from the store)."""

    def __init__(self, gauges: dict[str, tuple[str, float | None]]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for name, (help_text, value) in self.gauges.items():
            family = GaugeMetricFamily(name, help_text)
            if value is not None:
                family.add_metric([], value)
            yield family


class Metrics:
    def __init__(self) -> None:
        self.directory = multiprocess_directory()
        # In multiprocess mode values go to the directory's files whatever the registry;
        # this registry is what a one-process scrape reads.
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ledger_http_request_duration_seconds",
            "HTTP request latency.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.writer = {
            attribute: Counter(name, help_text, registry=self.registry)
            for attribute, (name, help_text) in WRITER_COUNTERS.items()
        }
        self._writer_seen = dict.fromkeys(WRITER_COUNTERS, 0)
        self._writer_lock = threading.Lock()
        self._committer: Any = None

    def watch_writer(self, committer: Any) -> None:
        """Counts what this process's group-commit writer does (its plain int counters are
        carried over into the Prometheus counters after each request and at each scrape)."""
        self._committer = committer

    def observe(self, route: str, method: str, status: int, latency_s: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(latency_s)
        self._carry_writer()

    def _carry_writer(self) -> None:
        committer = self._committer
        if committer is None:
            return
        with self._writer_lock:
            for attribute, seen in self._writer_seen.items():
                now = getattr(committer, attribute)
                if now != seen:
                    self.writer[attribute].inc(now - seen)
                    self._writer_seen[attribute] = now

    def render(self, gauges: dict[str, tuple[str, float | None]]) -> bytes:
        """The exposition text: the counters and histograms of every process of the server,
        then `gauges` (a metric name to its help text and value)."""
        self._carry_writer()
        if self.directory is None:
            ours = generate_latest(self.registry)
        else:
            every_process = CollectorRegistry()
            multiprocess.MultiProcessCollector(every_process, self.directory)
            ours = generate_latest(every_process)
        read_now = CollectorRegistry()
        read_now.register(_Gauges(gauges))
        return ours + generate_latest(read_now)
