"""What the request handlers share: the ledger, the token store, the read side, the metrics."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from fastapi import Request

from api.metrics import Metrics
from projections.audit import AuditTrail
from projections.read_models import ReadModels
from service.application import Ledger
from service.settings import Settings
from service.tokens import Tokens

log = logging.getLogger("ledger.api")
PROJECTION_INTERVAL_S = 1.0
# Bounded so that the projection lock is released now and then for readers' own catch-ups.
PROJECTION_BATCH_EVENTS = 20_000


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    tokens: Tokens
    read_models: ReadModels
    audit: AuditTrail
    metrics: Metrics
    _stop: threading.Event = field(default_factory=threading.Event)
    _projection: threading.Thread | None = None

    @classmethod
    def open(cls, settings: Settings) -> Services:
        ledger = Ledger(settings)
        return cls(
            settings=settings, ledger=ledger, tokens=Tokens(ledger),
            read_models=ReadModels(ledger), audit=AuditTrail(ledger), metrics=Metrics(),
        )

    def start(self) -> None:
        """Keeps the read models current between requests, so that /readyz and the lag
        metric tell the truth and a read after a quiet spell finds little to apply; unless
        the server runs a projection process for that (settings.projection_thread)."""
        if not self.settings.projection_thread:
            return
        self._projection = threading.Thread(
            target=self._project, name="ledger-projection", daemon=True
        )
        self._projection.start()

    def _project(self) -> None:
        while not self._stop.wait(PROJECTION_INTERVAL_S):
            try:
                self.read_models.catch_up(max_events=PROJECTION_BATCH_EVENTS)
                self.read_models.maintain()
            except Exception as exc:  # the database may be away for a while; keep trying
                log.warning("projection catch-up failed: %s", type(exc).__name__)

    def close(self) -> None:
        self._stop.set()
        if self._projection is not None:
            self._projection.join(timeout=30)
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
