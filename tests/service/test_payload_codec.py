"""The readers' payload codec (storage/payload_codec.py) and compression by size
(storage/transcodings.py), on both stores:

- for random histories, every stored event decodes to what the mapper's domain event holds,
  field by field (and the projector's reader agrees, postings as PostingRow);
- payloads below COMPRESS_FROM_BYTES are stored plain, larger ones compressed, and rows
  written when every payload was compressed still read back through every reader.
"""

from __future__ import annotations

import random
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.read_models.models import ReadModels
from projections.read_models.projector import HANDLERS
from service.application import Ledger
from storage import transcodings
from storage.keys import configured_key, derive_key
from storage.payload_codec import PayloadDecoder, decode_payload
from tests.conftest import BACKENDS
from tests.projections.helpers import as_rows
from tests.projections.history import HistoryWriter, random_history

ENVELOPE = ("originator_id", "originator_version")


def _rows(ledger: Ledger, after: int = 0) -> list[Any]:
    return ledger.recorder.select_notifications(start=after + 1, limit=10**9)


def _domain_fields(ledger: Ledger, n: Any) -> dict[str, Any]:
    fields = dict(vars(ledger.mapper.to_domain_event(n)))
    for key in ENVELOPE:
        del fields[key]
    return fields


def _assert_same(expected: dict[str, Any], got: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == value, key
        assert type(got[key]) is type(value), key


@pytest.mark.parametrize("kind", BACKENDS)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(5, 60))
def test_the_codec_agrees_with_the_domain_events_on_random_histories(
    kind: str, seed: int, steps: int
) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="codec-") as tmp,
        random_history(kind, Path(tmp), seed) as (_, rm, writer, _),
    ):
        writer.steps(steps)
        _agree(writer.ledger, rm)


def _agree(ledger: Ledger, rm: ReadModels) -> None:
    decoder = PayloadDecoder.for_mapper(ledger.mapper)
    row_decoder = PayloadDecoder.for_mapper(ledger.mapper, postings_as_rows=True)
    rows = _rows(ledger)
    assert rows
    batch = decoder.decode_many(
        [(n.originator_id, n.originator_version, n.topic, n.state) for n in rows]
    )
    for n, got in zip(rows, batch, strict=True):
        expected = _domain_fields(ledger, n)
        _assert_same(expected, got)
        _assert_same(
            as_rows(expected),
            row_decoder.decode(n.originator_id.hex, n.originator_version, n.topic, n.state),
        )
    # The projector's reader (its own cursor, stream ids as the store prints them) agrees too.
    conn = rm.store.connect()
    try:
        with rm.store.snapshot(conn) as cur:
            notifications = rm.projector.reader.select(cur, after=0, limit=10**9)
    finally:
        conn.close()
    for n, stored in zip(notifications, rows, strict=True):
        read = rm.projector.reader.decode(n)
        if n.topic not in HANDLERS:
            continue
        fields = dict(vars(read.event))
        assert fields.pop("originator_id") == str(stored.originator_id)
        _assert_same(as_rows(_domain_fields(ledger, stored)), fields)


def test_decode_payload_takes_the_event_key_alone(ledger: Ledger) -> None:
    HistoryWriter(ledger, random.Random(3)).steps(10)
    master = configured_key(ledger.settings).key
    assert master is not None
    key = derive_key(master, "event-cipher")  # as the ledger derives it
    for n in _rows(ledger):
        got = decode_payload(key, n.originator_id, n.originator_version, n.topic, n.state)
        assert got == _domain_fields(ledger, n)
        raw = PayloadDecoder.for_key(key).decode(
            n.originator_id, n.originator_version, n.topic, n.state, typed=False
        )
        assert raw["timestamp"]["_type_"] == "datetime_iso"  # as stored, tags left in
        from_master = PayloadDecoder.for_master_key(master)
        assert from_master.decode(n.originator_id, n.originator_version, n.topic, n.state) == got


def _opened(ledger: Ledger, n: Any) -> bytes:
    return ledger.mapper.open_state(n)


def test_small_payloads_are_stored_plain_and_large_ones_compressed(ledger: Ledger) -> None:
    HistoryWriter(ledger, random.Random(11)).steps(40)
    sizes = {"plain": 0, "compressed": 0}
    for n in _rows(ledger):
        opened = _opened(ledger, n)
        text = ledger.mapper.compressor.decompress(opened)
        assert text == ledger.mapper.transcoder.encode(ledger.mapper.transcoder.decode(text))
        if len(text) < transcodings.COMPRESS_FROM_BYTES:
            assert opened == text  # plain: the JSON itself
            sizes["plain"] += 1
        else:
            assert opened[:1] == b"\x78" and zlib.decompress(opened) == text
            sizes["compressed"] += 1
    assert sizes["plain"] > 0 and sizes["compressed"] > 0, sizes


def test_rows_written_when_every_payload_was_compressed_still_read(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(transcodings, "COMPRESS_FROM_BYTES", 0)  # the codec before the threshold
        writer = HistoryWriter(ledger, random.Random(5)).steps(20)
    old = _rows(ledger)
    assert all(_opened(ledger, n)[:1] == b"\x78" for n in old)
    writer.steps(20)
    everything = _rows(ledger)
    assert any(_opened(ledger, n)[:1] == b"{" for n in everything[len(old) :])
    decoder = PayloadDecoder.for_mapper(ledger.mapper)
    for n in everything:
        fields = _domain_fields(ledger, n)  # the mapper reads both
        got = decoder.decode(n.originator_id, n.originator_version, n.topic, n.state)
        assert got == fields
    rm = ReadModels(ledger)
    try:
        rm.catch_up()
        assert rm.position() == everything[-1].id
    finally:
        rm.close()
