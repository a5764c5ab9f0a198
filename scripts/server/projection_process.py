"""The server's projection process: one catch-up loop beside the HTTP processes.

A server process's threads share one core (the GIL). With the catch-up loop in a thread of
each HTTP process, the process serving a roster import gave about a fifth of its time to
applying events, and the import ran 20-35 % slower than with the loop in a process of its own
(measured with `ledger serve --workers 2` on PostgreSQL; see the README's benchmark notes).
So `ledger serve` runs the loop of `ledger project` (projections/read_models/worker.py) in a
child process and turns the thread off in its HTTP processes (settings.projection_thread). The
loop here also seals the audit chain by itself (projections/audit/sealer.py): one sealer per server.

The child is restarted if it dies, stopped with the server, and stops by itself if the server
dies without stopping it (SIGKILL): see scripts/server/supervisor.py. Reads do not depend on
it: a query catches the read models up first (read-your-writes), so while the child is away
reads stay correct, only slower.
"""

from __future__ import annotations

import signal
import threading

from scripts.server.supervisor import SupervisedProcess, watch_parent
from storage.settings import Settings


class ProjectionProcess(SupervisedProcess):
    """Starts the child, keeps one running while the server runs, and stops it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("ledger-projection", run, (settings,))
        self.settings = settings


def run(settings: Settings, parent_pid: int) -> None:
    """The child: the catch-up loop until SIGTERM or SIGINT, or until the parent is gone."""
    from api.logs import configure_logging
    from projections.audit.sealer import AutoSealer
    from projections.audit.trail import AuditTrail
    from projections.read_models.models import ReadModels
    from projections.read_models.worker import ProjectionWorker
    from service.application import Ledger

    configure_logging()
    stop = threading.Event()
    # Ctrl-C reaches the whole process group: stop as on SIGTERM, quietly.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    ledger = Ledger(settings)
    read_models = ReadModels(ledger)
    # The server's one automatic sealer lives here, beside its one catch-up loop.
    sealer = AutoSealer(AuditTrail(ledger, read_models), interval_s=settings.audit_seal_interval_s)
    worker = ProjectionWorker(read_models, sealer=sealer)
    # worker.stop() wakes the loop (a spare NOTIFY on PostgreSQL) and lets it end.
    watch_parent(parent_pid, stop, worker.stop, "the projection process")
    try:
        worker.run()
    finally:
        stop.set()
        read_models.close()
        ledger.close()
