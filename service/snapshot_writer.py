"""Snapshots inserted on a thread of their own, so that the writer never waits for their
commits.

A snapshot is a cache of an aggregate's state: reads restore the latest one and replay the
events after it, and read the same without it (service/repository.py). The ledger takes each
snapshot due after a write and maps it to a stored event at once (Snapshot.take copies the
aggregate's attributes shallowly, and the group-commit writer may change the aggregate again
in its next batch); only the insert and its commit, most of a snapshot's time, are left to
this thread: one worker, so that snapshots are inserted in the order they were taken.

A snapshot that fails to be written (the database away, a duplicate) is logged and dropped: the
commands stand without it, and the next one due for that aggregate is taken anyway. Ledger.close
waits for what is queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from eventsourcing.persistence import StoredEvent

log = logging.getLogger(__name__)


class SnapshotWriter:
    def __init__(self, insert: Callable[[Sequence[StoredEvent]], object]) -> None:
        self._insert = insert
        # Its thread is started by the first snapshot.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-snapshots")
        self.written = 0  # snapshots inserted
        self.dropped = 0  # snapshots whose insert failed

    def put(self, snapshots: Sequence[StoredEvent]) -> None:
        """Inserts these snapshots (one transaction) once those put before are."""
        if snapshots:
            self._executor.submit(self._write, list(snapshots))

    def flush(self) -> None:
        """Returns once every snapshot put before the call is inserted (or dropped)."""
        self._executor.submit(lambda: None).result()

    def close(self) -> None:
        """Inserts what is queued, then stops the thread."""
        self._executor.shutdown(wait=True)

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
