"""A projection worker for the crash test: it commits `commit_batches` batches normally, then
writes the next batch's rows, signals the test through a marker file and hangs before
committing, so that the test can kill -9 it mid-batch.

Run as: python -m tests.projections.hanging_worker URL KEY MARKER COMMIT_BATCHES BATCH_EVENTS
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from projections.read_models import projector
from projections.read_models.models import ReadModels
from service.application import Ledger
from storage.settings import Settings


def main() -> None:
    url, key, marker, commit_batches, batch_events = sys.argv[1:6]
    here = Path(marker).parent
    settings = Settings(
        database_url=url,
        encryption_key=key,
        key_file=here / "unused.key",
        audit_key_file=here / "audit.key",
    )
    read_models = ReadModels(Ledger(settings))
    flushed = 0
    write_rows = projector.Batch.flush

    def flush_then_hang(batch: projector.Batch) -> None:
        nonlocal flushed
        write_rows(batch)
        flushed += 1
        if flushed > int(commit_batches):
            # Written aside and renamed: the marker appears with its content complete.
            Path(marker + ".tmp").write_text(str(batch.position))
            os.replace(marker + ".tmp", marker)
            time.sleep(600)

    projector.Batch.flush = flush_then_hang
    read_models.catch_up(batch_events=int(batch_events))


if __name__ == "__main__":
    main()
