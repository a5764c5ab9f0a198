"""What encoding and decoding an event payload costs, per event, on one core.

    python -m scripts.bench.payload_codec [--events 100000] [--repeat 3]

A small deployment is written through the ledger (unions, members with personal data,
vouchers, idempotency records); its events are then cycled to `--events` events and timed:

- encode: the mapper's to_stored_event (JSON, zlib, AES-GCM), what every write pays;
- decode: the mapper's to_domain_event, what loading an aggregate pays per event;
- read:   the projector's own decoder (projections/read_models/event_reader.py), what a rebuild
          pays, over the events of topics a read model uses (read_used), and over every event
          with its payload opened (read_all: the audit index opens all but a few topics' payloads).

CPU time (process_time), best of --repeat. The machine is shared: compare figures of one run.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from projections.read_models.event_reader import EventReader, Notification
from projections.read_models.projector import HANDLERS
from scripts.synthetic import employer_code, id_number, union_code
from service.application import Ledger
from service.commands import FoundOrganization, JoinMember, RecordDues
from service.idempotency import IdempotencyKey
from storage.database import Store
from storage.settings import Settings

REGION = "110105"


def _write_sample(ledger: Ledger) -> None:
    root, base = union_code(REGION, 1, base=False), union_code(REGION, 2, base=True)
    ledger.execute(
        FoundOrganization(
            code=root,
            name="测试总工会",
            level="county",
            parent_code=None,
            region_code=REGION,
            founded_on="2024-01-02",
        )
    )
    ledger.execute(
        FoundOrganization(
            code=base,
            name="测试基层工会",
            level="base",
            parent_code=root,
            region_code=REGION,
            founded_on="2024-01-02",
            employer_code=employer_code(REGION, 2),
            employee_count=500,
        )
    )
    for n in range(40):
        person = id_number(REGION, datetime.date(1970, 1, 1) + datetime.timedelta(days=n), n)
        ledger.execute(
            JoinMember(
                id_number=person,
                name="欧阳娜娜",
                organization_code=base,
                joined_on="2024-02-01",
                mobile="13812345678",
            ),
            idempotency=IdempotencyKey.parse(base, f"join-{n}"),
        )
        ledger.execute(
            RecordDues(
                organization_code=base, period="2024-02", amount="12.50", received_on="2024-02-20"
            )
        )


def _best(repeat: int, run: Any) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def measure(events: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ledger-codec-") as tmp:
        directory = Path(tmp)
        settings = Settings(
            database_url=f"sqlite:///{directory / 'ledger.sqlite'}",
            encryption_key=base64.b64encode(os.urandom(32)).decode(),
            key_file=directory / "ledger.key",
            audit_key_file=directory / "audit.key",
            projection_thread=False,
        )
        ledger = Ledger(settings)
        store = Store(settings)
        try:
            _write_sample(ledger)
            notifications = ledger.recorder.select_notifications(start=1, limit=10_000)
            sample = [ledger.mapper.to_domain_event(n) for n in notifications]
            domain_events = [sample[i % len(sample)] for i in range(events)]
            stored = [ledger.mapper.to_stored_event(e) for e in domain_events]
            reader = EventReader(ledger, store, HANDLERS)
            fields = Notification._fields
            every = [
                Notification(
                    **{
                        name: value
                        for name, value in {
                            "id": i + 1,
                            "topic": s.topic,
                            "originator_id": s.originator_id.hex,
                            "originator_version": s.originator_version,
                            "state": s.state,
                        }.items()
                        if name in fields
                    }
                )
                for i, s in enumerate(stored)
            ]
            rows = [n for n in every if n.topic in HANDLERS]
            to_stored, to_domain = ledger.mapper.to_stored_event, ledger.mapper.to_domain_event
            encode_s = _best(repeat, lambda: [to_stored(e) for e in domain_events])
            decode_s = _best(
                repeat,
                lambda: [
                    to_domain(StoredEvent(s.originator_id, s.originator_version, s.topic, s.state))
                    for s in stored
                ],
            )
            read_s = _best(repeat, lambda: [reader.decode(n) for n in rows])
            # Before binding the reader skipped (fetched no state for) unused topics.
            read_all_s = _best(
                repeat, lambda: [reader.decode(n) for n in every if n.state is not None]
            )
            return {
                "events": events,
                "distinct_sample_events": len(sample),
                "mean_payload_bytes": round(sum(len(s.state) for s in stored) / events, 1),
                "encode_us_per_event": round(encode_s / events * 1e6, 2),
                "decode_us_per_event": round(decode_s / events * 1e6, 2),
                "read_used_events": len(rows),
                "read_used_us_per_event": round(read_s / max(1, len(rows)) * 1e6, 2),
                "read_all_us_per_event": round(read_all_s / events * 1e6, 2),
            }
        finally:
            store.close()
            ledger.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.events, args.repeat), indent=2))


if __name__ == "__main__":
    main()
