"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from api.errors import problem
from api.json_answer import JsonAnswer
from api.metrics import CONTENT_TYPE
from api.services import Services, services

router = APIRouter(tags=["operations"])
Svc = Annotated[Services, Depends(services)]


@router.get("/healthz")
def healthz() -> dict:
    """The process is alive (nothing else is checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready"}})
def readyz(svc: Svc) -> JSONResponse:
    """The database answers and the read models are within the configured lag."""
    head = svc.ledger.head_position()
    lag = svc.read_models.lag()
    bound = svc.settings.ready_max_lag_events
    if lag > bound:
        return problem(503, f"the read models are {lag} events behind (bound {bound})")
    return JsonAnswer({"status": "ready", "position": head, "projection_lag_events": lag})


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(svc: Svc) -> Response:
    """Prometheus text format: requests by route and status, latency histograms and the
    group-commit writers' counters, summed over every HTTP process of the server; events
    stored and the projection's position and lag."""
    head = svc.ledger.head_position()
    gauges = {
        "ledger_events_stored": ("Events in the store (the head position).", float(head)),
        "ledger_projection_lag_events": (
            "Events stored but not yet applied to the read models.",
            float(svc.read_models.lag()),
        ),
        "ledger_projection_position": (
            "The last event applied to the read models.",
            float(svc.read_models.position()),
        ),
    }
    return Response(svc.metrics.render(gauges), media_type=CONTENT_TYPE)
