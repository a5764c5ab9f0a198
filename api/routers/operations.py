"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse

from api.errors import problem
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
    return JSONResponse({"status": "ready", "position": head, "projection_lag_events": lag})


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(svc: Svc) -> PlainTextResponse:
    """Prometheus text format: requests by route and status, latency histograms, events
    stored, projection lag, and this process's group-commit writer."""
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
    committer = svc.ledger.committer
    counters = {
        "ledger_writer_batches_total": (
            "Batches this process's writer has committed (group commit).",
            committer.batches,
        ),
        "ledger_writer_commands_total": ("Commands in those batches.", committer.commands),
        "ledger_writer_decided_again_total": (
            "Batches decided a second time under the writer lock, because another process "
            "had changed an aggregate they read.",
            committer.decided_again,
        ),
        "ledger_writer_commands_decided_again_total": (
            "Commands of those batches decided a second time (the others stood as first decided).",
            committer.commands_decided_again,
        ),
    }
    return PlainTextResponse(
        svc.metrics.render(gauges, counters), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
