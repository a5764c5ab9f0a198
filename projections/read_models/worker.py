"""The projection worker: a catch-up loop over the notification log.

One mechanism for both stores. On PostgreSQL it sleeps on LISTEN (the events table's insert
issues NOTIFY on the recorder's channel, `ledger_events`) and wakes when events arrive; a
timeout wakes it anyway, in case a notification was missed while it was reconnecting. SQLite
has no notifications: the loop polls. Several workers may run at once: each batch locks the
projection's position row, so they take turns and never apply a batch twice.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg

from projections.audit.sealer import AutoSealer
from projections.read_models.models import ReadModels

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
LISTEN_TIMEOUT_S = 2.0
# Under a steady stream of writes every commit notifies: catching up after each would cost
# a few queries per group-commit batch (a fifth of a core at 650 requests/s). Catching up at
# most this often applies the same events in fewer, larger batches; a read never waits for
# it, as queries catch up first (read-your-writes).
MIN_INTERVAL_S = 0.5
# Statistics and vacuum (ReadModels.maintain) come every MAINTAIN_EVERY_EVENTS events, and
# also once writes pause after at least this many: a burst (a roster import) then leaves
# fresh statistics and a visibility map behind it for the reads that follow.
QUIET_MAINTAIN_EVENTS = 1_000
MAX_BACKOFF_S = 10.0


class ProjectionWorker:
    def __init__(
        self,
        read_models: ReadModels,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        listen_timeout_s: float = LISTEN_TIMEOUT_S,
        batch_events: int | None = None,
        min_interval_s: float = MIN_INTERVAL_S,
        sealer: AutoSealer | None = None,
    ) -> None:
        self.read_models = read_models
        # The server's automatic sealing (projections/audit/sealer.py): one per server, so
        # only the server's own loop has one, never `ledger project`'s.
        self.sealer = sealer
        self.poll_interval_s = poll_interval_s
        self.min_interval_s = min_interval_s
        self.listen_timeout_s = listen_timeout_s
        self.batch_events = batch_events
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def catch_up_once(self) -> int:
        return self.read_models.catch_up(batch_events=self.batch_events)

    def run(self) -> None:
        """Runs until stop() is called. Errors (a busy or restarting database, tables being
        switched by a rebuild) are logged and retried with backoff, never fatal."""
        backoff_s = self.poll_interval_s
        listener = None
        last_position = None
        try:
            while not self.stopping.is_set():
                try:
                    if listener is None and not self.read_models.store.is_sqlite:
                        listener = self._listen()
                    started = time.monotonic()
                    position = self.catch_up_once()
                    if position == last_position:  # nothing new since the last round
                        self.read_models.maintain(QUIET_MAINTAIN_EVENTS)
                    else:
                        self.read_models.maintain()
                    last_position = position
                    if self.sealer is not None:
                        self.sealer.tick()
                    backoff_s = self.poll_interval_s
                    self.stopping.wait(self.min_interval_s - (time.monotonic() - started))
                    self._wait(listener)
                except (psycopg.Error, OSError, RuntimeError) as exc:
                    log.warning("projection catch-up failed, retrying in %.1fs: %s", backoff_s, exc)
                    if listener is not None:
                        listener.close()
                        listener = None
                    self.stopping.wait(backoff_s)
                    backoff_s = min(MAX_BACKOFF_S, backoff_s * 2)
                except Exception as exc:  # sqlite3 errors and the like: same policy
                    log.warning("projection catch-up failed, retrying in %.1fs: %r", backoff_s, exc)
                    self.stopping.wait(backoff_s)
                    backoff_s = min(MAX_BACKOFF_S, backoff_s * 2)
        finally:
            if listener is not None:
                listener.close()

    def _listen(self) -> Any:
        channel = getattr(self.read_models.ledger.recorder, "channel_name", "ledger_events")
        conn = psycopg.connect(self.read_models.store.conninfo, autocommit=True)
        conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
        return conn

    def _wake(self) -> None:
        """Wakes a listening loop at once (a spare NOTIFY), so that stopping is quick."""
        channel = getattr(self.read_models.ledger.recorder, "channel_name", "ledger_events")
        try:
            with psycopg.connect(self.read_models.store.conninfo, autocommit=True) as conn:
                conn.execute(psycopg.sql.SQL("NOTIFY {}").format(psycopg.sql.Identifier(channel)))
        except psycopg.Error:
            pass  # the loop wakes on its own timeout instead

    def _wait(self, listener: Any) -> None:
        if listener is None:
            self.stopping.wait(self.poll_interval_s)
            return
        # Returns at the first notification, or after the timeout.
        for _ in listener.notifies(timeout=self.listen_timeout_s, stop_after=1):
            pass

    def start(self) -> threading.Thread:
        """Runs the loop in a daemon thread (in each process of an app hosted other than by
        `ledger serve`, which runs it in a process of its own:
        scripts/server/projection_process.py)."""
        self._thread = threading.Thread(target=self.run, name="projection-worker", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stopping.set()
        if not self.read_models.store.is_sqlite:
            self._wake()
        if self._thread is not None:
            self._thread.join(timeout_s)
