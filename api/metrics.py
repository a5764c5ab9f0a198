"""Prometheus text-format metrics, kept in-process (each server process exposes its own).

Requests are counted by route template (never the raw path, which would let clients create
unbounded label values), method and status, with a latency histogram per route and method.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums_s: dict[tuple[str, str], float] = defaultdict(float)
        self._counts: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, route: str, method: str, status: int, latency_s: float) -> None:
        with self._lock:
            self._requests[(route, method, str(status))] += 1
            key = (route, method)
            buckets = self._buckets.setdefault(key, [0] * len(LATENCY_BUCKETS_S))
            for i, bound in enumerate(LATENCY_BUCKETS_S):
                if latency_s <= bound:
                    buckets[i] += 1
            self._sums_s[key] += latency_s
            self._counts[key] += 1

    def render(
        self,
        gauges: dict[str, tuple[str, float | None]],
        counters: dict[str, tuple[str, int]] | None = None,
    ) -> str:
        """The exposition text; gauges and counters map a metric name to (help text, value)."""
        lines = [
            "# HELP ledger_http_requests_total HTTP requests by route, method and status.",
            "# TYPE ledger_http_requests_total counter",
        ]
        with self._lock:
            for (route, method, status), n in sorted(self._requests.items()):
                labels = _labels(route=route, method=method, status=status)
                lines.append(f"ledger_http_requests_total{labels} {n}")
            lines += [
                "# HELP ledger_http_request_duration_seconds HTTP request latency.",
                "# TYPE ledger_http_request_duration_seconds histogram",
            ]
            for (route, method), buckets in sorted(self._buckets.items()):
                name = "ledger_http_request_duration_seconds"
                for bound, n in zip(LATENCY_BUCKETS_S, buckets, strict=True):
                    labels = _labels(route=route, method=method, le=f"{bound:g}")
                    lines.append(f"{name}_bucket{labels} {n}")
                count = self._counts[(route, method)]
                inf = _labels(route=route, method=method, le="+Inf")
                lines.append(f"{name}_bucket{inf} {count}")
                lines.append(
                    f"{name}_sum{_labels(route=route, method=method)} "
                    f"{self._sums_s[(route, method)]:.6f}"
                )
                lines.append(f"{name}_count{_labels(route=route, method=method)} {count}")
        for name, (help_text, value) in gauges.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            if value is not None:
                lines.append(f"{name} {value:g}")
        for name, (help_text, total) in (counters or {}).items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {total}"]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Times every HTTP request and records it under the route that matched it."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], Metrics]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics().observe(
                template, scope.get("method", ""), status, time.perf_counter() - started
            )
