"""Snapshots inserted on a thread of their own, so that the group-commit writer never waits
for their commits.

A snapshot is a cache of an aggregate's state: reads restore the latest one and replay the
events after it, and read the same without it (service/repository.py). The writer takes each
snapshot due after a batch and maps it to a stored event at once (Snapshot.take copies the
aggregate's attributes shallowly, and the writer may change the aggregate again in its next
batch); only the insert and its commit, most of a snapshot's time, are left to this thread.
Snapshots queued together are inserted in one transaction.

A snapshot that fails to be written (the database away, a duplicate) is logged and dropped: the
commands stand without it, and the next one due for that aggregate is taken anyway. Ledger.close
waits for what is queued.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from eventsourcing.persistence import StoredEvent

log = logging.getLogger(__name__)


class SnapshotWriter:
    def __init__(self, insert: Callable[[Sequence[StoredEvent]], object]) -> None:
        self._insert = insert
        self._queue: queue.SimpleQueue[StoredEvent | Future[None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._started = threading.Lock()
        self.written = 0  # snapshots inserted
        self.dropped = 0  # snapshots whose insert failed

    def put(self, snapshots: Sequence[StoredEvent]) -> None:
        if not snapshots:
            return
        self._ensure_started()
        for snapshot in snapshots:
            self._queue.put(snapshot)

    def flush(self, timeout_s: float | None = None) -> None:
        """Returns once every snapshot queued before the call is inserted (or dropped)."""
        if self._thread is None:
            return
        done: Future[None] = Future()
        self._queue.put(done)
        done.result(timeout_s)

    def close(self) -> None:
        """Inserts what is queued, then stops the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._started:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="ledger-snapshots", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            while True:  # everything queued meanwhile: one transaction
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            snapshots = [i for i in items if isinstance(i, StoredEvent)]
            if snapshots:
                self._write(snapshots)
            for item in items:
                if item is None:
                    stopping = True
                elif isinstance(item, Future):
                    item.set_result(None)

    def _write(self, snapshots: list[StoredEvent]) -> None:
        try:
            self._insert(snapshots)
        except Exception:
            self.dropped += len(snapshots)
            log.warning(
                "%d snapshots were not written (reads replay more events until the next)",
                len(snapshots),
                exc_info=True,
            )
        else:
            self.written += len(snapshots)
