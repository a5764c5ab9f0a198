"""What the request handlers share: the ledger, the token store, the read side, the metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import Request

from api.metrics import Metrics
from projections.audit.sealer import AutoSealer
from projections.audit.trail import AuditTrail
from projections.read_models.models import ReadModels
from projections.read_models.worker import ProjectionWorker
from service.application import Ledger
from service.tokens import Tokens
from storage.settings import Settings


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    tokens: Tokens
    read_models: ReadModels
    audit: AuditTrail
    metrics: Metrics
    _projection: ProjectionWorker | None = None
    # Token verifications under way in this process, by presented token (api/security.py).
    verifying: dict[str, asyncio.Future] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings) -> Services:
        ledger = Ledger(settings)
        read_models = ReadModels(ledger)
        metrics = Metrics()
        metrics.watch_writer(ledger.committer)
        return cls(
            settings=settings,
            ledger=ledger,
            tokens=Tokens(ledger),
            read_models=read_models,
            audit=AuditTrail(ledger, read_models),
            metrics=metrics,
        )

    def start(self) -> None:
        """Keeps the read models current between requests, so that /readyz and the lag
        metric tell the truth and a read after a quiet spell finds little to apply: the loop
        of `ledger project` in a thread, unless the server runs it in a process of its own
        (settings.projection_thread). The loop also seals the audit chain by itself: one
        sealer per server (projections/audit/sealer.py)."""
        if self.settings.projection_thread:
            self._projection = ProjectionWorker(
                self.read_models,
                sealer=AutoSealer(self.audit, interval_s=self.settings.audit_seal_interval_s),
            )
            self._projection.start()

    def close(self) -> None:
        if self._projection is not None:
            self._projection.stop(timeout_s=30)
        self.read_models.close()
        self.ledger.close()

    def caught_up(self) -> ReadModels:
        """The read models with every committed event applied: read-your-writes across
        processes, since a write's response is only sent after its commit."""
        self.read_models.catch_up()
        return self.read_models


async def services(request: Request) -> Services:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a hop per request.
    return request.app.state.services
