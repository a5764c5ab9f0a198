"""What encoding and decoding an event payload costs, per event, on one core.

    python -m scripts.bench.payload_codec [--events 100000] [--repeat 3]
    python -m scripts.bench.payload_codec --store [--events 60000]   # a loaded store's events

A small deployment is written through the ledger (unions, members with personal data,
vouchers, idempotency records); its events are then cycled to `--events` events and timed:

- encode: the mapper's to_stored_event (JSON, zlib, AES-GCM), what every write pays;
- decode: the mapper's to_domain_event, what loading an aggregate pays per event;
- read:   the projector's own decoder (projections/read_models/event_reader.py), what a rebuild
          pays, over the events of topics a read model uses (read_used), and over every event
          with its payload opened (read_all: the audit index opens all but a few topics' payloads).

With --store, the events are instead the first --events of the store the LEDGER_* settings
name (a `ledger demo` store: real payloads), and each stage of reading is timed on its own
(decrypt, decompress, parse with eventsourcing's transcoder, with orjson alone, with the readers'
codec storage/payload_codec.py, the whole codec, the mapper's domain events), with the bytes
stored and the zlib time at each compression threshold (storage/transcodings.py
COMPRESS_FROM_BYTES, also as if written over HTTP: thresholds_token_actor), and the write
side's JSON encoding by the ledger's transcoder beside eventsourcing's.

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
import uuid
import zlib
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, StoredEvent

from projections.read_models.event_reader import EventReader, Notification
from projections.read_models.projector import HANDLERS
from scripts.demo_loader import ACTOR as DEMO_ACTOR
from scripts.synthetic import employer_code, id_number, union_code
from service.application import Ledger
from service.commands import FoundOrganization, JoinMember, RecordDues
from service.idempotency import IdempotencyKey
from storage.database import Store
from storage.payload_codec import PayloadDecoder
from storage.settings import Settings
from storage.transcodings import decompress_payload

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


THRESHOLDS = (0, 128, 192, 256, 320, 384, 512, 1024, None)  # None: never compress


def _us(seconds: float, count: int) -> float:
    return round(seconds / max(1, count) * 1e6, 2)


def _percentiles(values: list[int]) -> dict[str, int]:
    ordered = sorted(values)
    return {
        f"p{p}": ordered[min(len(ordered) - 1, len(ordered) * p // 100)] for p in (10, 50, 90, 99)
    }


def thresholds(plains: list[bytes], repeat: int) -> list[dict[str, Any]]:
    """Bytes stored and zlib time per event if payloads of `from_bytes` or more are compressed."""
    compressed = [zlib.compress(p, 1) for p in plains]
    total_plain = sum(len(p) for p in plains)
    rows = []
    for threshold in THRESHOLDS:
        big = [p for p in plains if threshold is not None and len(p) >= threshold]
        packed = [zlib.compress(p, 1) for p in big]
        stored = sum(
            len(c) if threshold is not None and len(p) >= threshold else len(p)
            for p, c in zip(plains, compressed, strict=True)
        )
        encode_s = _best(repeat, lambda big=big: [zlib.compress(p, 1) for p in big])
        decode_s = _best(repeat, lambda packed=packed: [zlib.decompress(c) for c in packed])
        rows.append(
            {
                "compress_from_bytes": threshold,
                "compressed_share": round(len(big) / len(plains), 3),
                "stored_bytes_per_event": round(stored / len(plains), 1),
                "stored_vs_plain": round(stored / total_plain, 3),
                "compress_us_per_event": _us(encode_s, len(plains)),
                "decompress_us_per_event": _us(decode_s, len(plains)),
            }
        )
    return rows


def write_side(ledger: Ledger, stored: list[Any], repeat: int) -> dict[str, Any]:
    """eventsourcing's JSONTranscoder against the ledger's (storage/transcodings.py
    LedgerTranscoder), on the same event states: time, and how many payloads come out byte
    for byte the same."""
    mapper = ledger.mapper
    states = []
    for s in stored:
        state = dict(vars(mapper.to_domain_event(s)))
        del state["originator_id"], state["originator_version"]
        states.append(state)
    standard = JSONTranscoder()
    for transcoding in mapper.transcoder.types.values():  # type: ignore[attr-defined]
        standard.register(transcoding)
    same = sum(mapper.transcoder.encode(st) == standard.encode(st) for st in states)
    stdlib_s = _best(repeat, lambda: [standard.encode(st) for st in states])
    ledger_s = _best(repeat, lambda: [mapper.transcoder.encode(st) for st in states])
    return {
        "events": len(states),
        "transcoder_encode_us_per_event": _us(stdlib_s, len(states)),
        "ledger_encode_us_per_event": _us(ledger_s, len(states)),
        "byte_identical": same,
    }


# What the events of a demo store would hold had they come over HTTP: a token's actor
# ("token:" and the token's id) instead of the demo loader's.
_DEMO_ACTOR = b'"actor":' + orjson.dumps(DEMO_ACTOR)
_TOKEN_ACTOR = b'"actor":"token:' + str(uuid.UUID(int=0)).encode() + b'"'


def measure_store(events: int, repeat: int) -> dict[str, Any]:
    """Each stage of reading the first `events` stored events of the configured store."""
    ledger = Ledger(Settings(projection_thread=False))
    try:
        stored = ledger.recorder.select_notifications(start=1, limit=events)
        mapper = ledger.mapper
        cipher = mapper.payloads
        decoder = PayloadDecoder.for_mapper(mapper, postings_as_rows=True)
        rows = [(n.originator_id, n.originator_version, n.topic, n.state) for n in stored]
        opened = [cipher.open(st, i, v, t) for i, v, t, st in rows]
        plains = [decompress_payload(o) for o in opened]
        topics = [t for _, _, t, _ in rows]
        count = len(rows)
        stages = {
            "decrypt": _best(repeat, lambda: [cipher.open(st, i, v, t) for i, v, t, st in rows]),
            "decompress": _best(repeat, lambda: [decompress_payload(o) for o in opened]),
            "parse_transcoder": _best(
                repeat, lambda: [mapper.transcoder.decode(p) for p in plains]
            ),
            "parse_orjson_only": _best(repeat, lambda: [orjson.loads(p) for p in plains]),
            "parse_codec": _best(
                repeat, lambda: [decoder.parse(p, t) for p, t in zip(plains, topics, strict=True)]
            ),
            "decode_codec": _best(repeat, lambda: decoder.decode_many(rows)),
            "to_domain_event": _best(repeat, lambda: [mapper.to_domain_event(n) for n in stored]),
        }
        return {
            "store": ledger.store_name,
            "events": count,
            "stored_state_bytes_mean": round(sum(len(st) for *_, st in rows) / count, 1),
            "plain_json_bytes": _percentiles([len(p) for p in plains]),
            "plain_json_bytes_mean": round(sum(len(p) for p in plains) / count, 1),
            "stored_compressed_share": round(
                sum(not p.startswith(b"{") for p in opened) / count, 3
            ),
            "us_per_event": {name: _us(sec, count) for name, sec in stages.items()},
            "events_per_s": {name: round(count / sec) for name, sec in stages.items() if sec > 0},
            "thresholds": thresholds(plains, repeat),
            "thresholds_token_actor": thresholds(
                [p.replace(_DEMO_ACTOR, _TOKEN_ACTOR, 1) for p in plains], repeat
            ),
            "write_json": write_side(ledger, stored[: min(count, 20_000)], repeat),
        }
    finally:
        ledger.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", action="store_true", help="the configured store's events")
    args = parser.parse_args(argv)
    result = (
        measure_store(args.events, args.repeat) if args.store else measure(args.events, args.repeat)
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
