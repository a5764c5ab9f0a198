"""The Spark job's fold without Spark: the offline decoder is the Ledger's, and a stream
folded alone gives the projector's rows (the whole job is tested in test_spark_job.py)."""

from __future__ import annotations

import base64

import pytest

from projections.read_models.models import ReadModels
from projections.read_models.rows import micros
from projections.spark.fold import ExportMismatch, fold_stream, offline_decoder, offline_mapper
from service.application import Ledger
from storage.keys import configured_key
from tests.conftest import Backend
from tests.projections.test_audit import build_deployment


def _key(backend: Backend) -> bytes:
    key = configured_key(backend.settings).key
    assert key is not None
    return key


def _stream_rows(ledger: Ledger, stream: str) -> list[tuple]:
    """(position, stream, version, topic, payload, recorded_us, at_us) of one stream; at_us is
    taken as the event's own time (the job computes the running maximum)."""
    rows = []
    for n in ledger.recorder.select_notifications(start=1, limit=10_000):
        if n.originator_id.hex != stream:
            continue
        event = ledger.mapper.to_domain_event(n)
        at = micros(event.timestamp)
        rows.append((n.id, stream, n.originator_version, n.topic, n.state, at, at))
    return rows


def test_the_offline_mapper_is_the_ledgers(ledger: Ledger) -> None:
    mine = offline_mapper(b"\0" * 32)
    assert sorted(mine.transcoder.names) == sorted(ledger.mapper.transcoder.names)
    assert type(mine.compressor) is type(ledger.mapper.compressor)


def test_a_members_stream_folds_to_the_projectors_rows(backend: Backend) -> None:
    ledger = backend.open()
    build_deployment(ledger)
    read_models = ReadModels(ledger)
    try:
        read_models.catch_up()
        with read_models.store.reader() as cur:
            cur.execute(
                "SELECT member_id, organization_code, status, valid_from FROM rm_roll_spans"
            )
            live = {r[0]: r for r in cur.fetchall() if r[2] == "active"}
        member_id = sorted(live)[0]
        rows = _stream_rows(ledger, member_id.replace("-", ""))
        made = fold_stream(offline_decoder(_key(backend)), rows)
        spans = [s for s in made["roll_spans"] if s["status"] == "active"]
        assert [(s["member_id"], s["organization_code"], s["valid_from"]) for s in spans] == [
            (member_id, live[member_id][1], live[member_id][3])
        ]
        assert all(
            set(d) & {"name_enc", "id_number_enc", "mobile_enc"} == set()
            for d in made["member_details"]
        )
        # The export's recorded_at must be the payload's own time.
        position, stream, version, topic, payload, at, _ = rows[0]
        with pytest.raises(ExportMismatch):
            fold_stream(
                offline_decoder(_key(backend)),
                [(position, stream, version, topic, payload, at + 1, at + 1)],
            )
        # Another deployment's key opens nothing.
        with pytest.raises(Exception, match="does not belong to this row"):
            fold_stream(offline_decoder(base64.b64decode(base64.b64encode(b"\1" * 32))), rows)
    finally:
        read_models.close()
