"""/healthz, /readyz, /metrics, /docs; and 503 when the database goes away."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import httpx
import pytest

from api.logs import JsonFormatter
from service.tokens import Tokens
from tests.api.conftest import Api, ServerThread
from tests.conftest import Backend, drop_pg_database


def test_health_and_readiness(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert api.client.get("/docs").status_code == 200
    assert "Union Ledger" in api.client.get("/openapi.json").json()["info"]["title"]


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """A metric's samples in Prometheus text: its labels (sorted pairs) to its value."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match:
            labels = re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', match.group(1) or "")
            found[tuple(sorted(labels))] = float(match.group(2))
    return found


def test_metrics(api: Api) -> None:
    api.get(f"/v1/organizations/{api.tree.root}")
    api.get("/v1/organizations/unknown")
    text = api.client.get("/metrics").text
    assert api.client.get("/metrics").headers["content-type"].startswith("text/plain")
    route = "/v1/organizations/{code}"
    requests = samples(text, "ledger_http_requests_total")
    assert requests[(("method", "GET"), ("route", route), ("status", "200"))] >= 1
    assert (("method", "GET"), ("route", route), ("status", "404")) in requests
    buckets = samples(text, "ledger_http_request_duration_seconds_bucket")
    assert buckets[(("le", "+Inf"), ("method", "GET"), ("route", route))] >= 2
    stored = int(float(re.search(r"^ledger_events_stored (\S+)$", text, re.M).group(1)))
    assert stored == api.backend.open().head_position()
    assert re.search(r"^ledger_projection_lag_events \d", text, re.M)
    for line in text.splitlines():  # every sample line is "name{labels} value"
        assert line.startswith("#") or re.match(r"^[a-z_]+(\{.*\})? [0-9.e+-]+$", line), line


@pytest.mark.slow
def test_unreachable_database_is_503(tmp_path: Path) -> None:
    """Answered at once since service/outage.py tries each store call once (about 1 s here;
    it took ~50 s with the store's own retries): the 60 s client timeout is a deadline."""
    backend = Backend("postgres", tmp_path)
    server = ServerThread(backend.settings).start()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        token = Tokens(backend.open()).mint(role="admin")[1]
        client = httpx.Client(
            base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        )
        assert client.get("/readyz").status_code == 200
        for app in backend._apps:
            app.close()
        drop_pg_database(backend.pg_database)
        backend.pg_database = None
        response = client.get("/v1/organizations/811101050000000010")
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        # The warning logged for it carries the request's id.
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        warned = [line for line in lines if line["message"].startswith("database unavailable")]
        assert warned and warned[-1]["request_id"] == response.headers["x-request-id"]
        assert warned[-1]["level"] == "WARNING"
        assert client.get("/healthz").status_code == 200
    finally:
        logging.getLogger().removeHandler(handler)
        server.stop()
        backend.close()
