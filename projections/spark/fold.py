"""What the Spark job runs on its executors: a sealed export's rows opened with the project's
own decoder and applied with the projector's own handlers, one stream at a time, in memory.

Nothing here imports pyspark: these are plain functions over rows, called inside
mapInPandas (projections/spark/job.py) and testable without Spark.

One implementation of each rule:

- payloads are opened by EventDecoder.decode (projections/read_models/event_reader.py), the
  projector's own decoder: the row-bound payload cipher, the compressor, the transcodings;
- what an event means for the read models is the projector's handler for its topic
  (projections/read_models/projector.py HANDLERS), run on a Batch held in memory: a posting's
  ledger lines, a membership change's roll spans, changes and details, an organisation's rows.

Every handler the job runs reads and writes only rows of its own stream (a member's spans, a
voucher's lines, an organisation's record), so a stream folded by itself, in version order,
gives exactly the rows the projector gives when it applies the whole log. Two inputs come from
outside the stream and are given with each event: its position, and its recorded time as the
projector counts it (a running maximum over the log, computed by the job before the fold).

Personal data never leaves the fold: the Batch's cipher here encrypts nothing (the columns
that would hold a name, identity number or mobile stay empty and are not output), and a
member's sex is read from the identity number inside the executor, as the projector does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from projections.read_models.event_reader import EventDecoder, Notification
from projections.read_models.projector import HANDLERS, Batch
from projections.read_models.rows import micros
from projections.read_models.schema import TABLES_BY_NAME
from storage.keys import derive_key
from storage.payload_binding import BoundMapper
from storage.transcodings import FastZlibCompressor, register_transcodings

# The topics the job folds: organisations, members, vouchers. Every other topic (registers,
# book closes, admissions) touches rows the monthly comparison and the roll-up do not read.
FOLDED_TOPICS = frozenset(
    t
    for t in HANDLERS
    if t.startswith(("ledger:Organisation.", "ledger:Member.", "ledger:Voucher."))
)

# The read-model tables the job outputs, with the columns it keeps. member_details drops the
# encrypted name, identity number and mobile and the identity number's lookup hash: the
# outputs hold member ids only.
PERSONAL_COLUMNS = frozenset({"id_number_hash", "name_enc", "id_number_enc", "mobile_enc"})
OUTPUT_TABLES: dict[str, tuple[str, ...]] = {
    name: tuple(c for c in TABLES_BY_NAME[name].column_names if c not in PERSONAL_COLUMNS)
    for name in (
        "organizations",
        "org_parents",
        "org_employees",
        "roll_spans",
        "member_details",
        "roll_changes",
        "vouchers",
        "ledger_lines",
    )
}


class ExportMismatch(RuntimeError):
    """A row of an export says something its own payload contradicts."""


def offline_mapper(master_key: bytes) -> BoundMapper:
    """The ledger's mapper without its store: eventsourcing's default transcodings and the
    project's (as service/application.py's Ledger registers them), the project's compressor,
    and the payload key derived from the deployment's master key as the Ledger derives it.
    tests/projections/test_spark_fold.py checks it decodes what a Ledger wrote."""
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register_transcodings(transcoder)
    mapper = BoundMapper(transcoder=transcoder, compressor=FastZlibCompressor(), cipher=None)
    mapper.use_key(derive_key(master_key, "event-cipher"))
    return mapper


def offline_decoder(master_key: bytes) -> EventDecoder:
    """The projector's own decoder, over an export instead of a database."""
    return EventDecoder(offline_mapper(master_key), HANDLERS)


class _NoPersonalData:
    """The Batch's cipher in the fold: nothing personal is encrypted, hashed or output."""

    def encrypt(self, plaintext: str | None, *, field: str, origin: str) -> None:
        return None

    def lookup_hash(self, value: str) -> str:
        return ""


class StreamBatch(Batch):
    """A projector Batch for one stream, entirely in memory: every row the stream's events
    touch was made by an earlier event of the same stream, so no stored row is ever read."""

    def __init__(self) -> None:
        super().__init__(None, None, None, _NoPersonalData(), {}, keep_sums=False)  # type: ignore[arg-type]

    def prefetch_members(self, member_ids: set[str]) -> None:
        return None

    def _select(self, table: str, where: str, params: Any) -> list[dict[str, Any]]:
        return []  # rows of other streams: none that the folded handlers read


def fold_stream(
    decoder: EventDecoder, events: Iterable[tuple[int, str, int, str, bytes, int, int]]
) -> dict[str, list[dict[str, Any]]]:
    """Applies one stream's events, in version order, as the projector would. Each event is
    (position, stream id, version, topic, payload, recorded_us, at_us): recorded_us is the
    export's recorded_at (checked against the payload's own timestamp), at_us the projector's
    running maximum. Returns the rows made, per output table."""
    batch = StreamBatch()
    for position, stream, version, topic, payload, recorded_us, at_us in events:
        read = decoder.decode(Notification(position, topic, stream, version, payload))
        event = read.event
        if event is None:
            continue
        if micros(event.timestamp) != recorded_us:
            raise ExportMismatch(
                f"the event at position {position}: the export's recorded_at is not the "
                "time its payload holds (the column was altered)"
            )
        batch.position, batch.at_us = position, at_us
        HANDLERS[topic](batch, event)
    return {
        table: [{c: row[c] for c in columns} for row in batch.inserts[table].values()]
        for table, columns in OUTPUT_TABLES.items()
    }


def fold_rows(
    keys: dict[str, bytes], rows: Iterable[tuple[Any, ...]]
) -> Iterator[tuple[str, str, str]]:
    """(deployment, table, row as JSON) for rows sorted by (deployment, stream, version):
    (deployment, position, stream, version, topic, payload, recorded_us, at_us). Each
    deployment's payloads are opened with its own key (keys: deployment -> master key)."""
    decoders: dict[str, EventDecoder] = {}
    current: tuple[str, str] | None = None
    pending: list[tuple[int, str, int, str, bytes, int, int]] = []

    def flush() -> Iterator[tuple[str, str, str]]:
        assert current is not None
        deployment = current[0]
        decoder = decoders.get(deployment)
        if decoder is None:
            decoder = decoders[deployment] = offline_decoder(keys[deployment])
        for table, made in fold_stream(decoder, pending).items():
            for row in made:
                yield deployment, table, json.dumps(row, ensure_ascii=False, sort_keys=True)

    for deployment, position, stream, version, topic, payload, recorded_us, at_us in rows:
        if (deployment, stream) != current:
            if pending:
                yield from flush()
            current, pending = (deployment, stream), []
        pending.append(
            (int(position), stream, int(version), topic, bytes(payload), recorded_us, at_us)
        )
    if pending:
        yield from flush()
