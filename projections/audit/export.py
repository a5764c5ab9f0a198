"""Sealed exports of the event log (封存导出): Parquet segments that verify with no database.

`ledger export --out DIR` writes the log, in position order, as immutable Parquet segments and
a manifest. Each row is one event exactly as stored, plus its place in the audit chain:

    position      int64      the event's position in the log
    stream_id     string     the stream (aggregate) id, 32 lowercase hex digits
    version       int64      the event's version in its stream
    topic         string     the stored topic
    recorded_at   timestamp  when the event was recorded (UTC, microseconds; null if unreadable)
    payload       binary     the stored payload bytes: compressed and encrypted, never opened
    chain_link    binary     the audit chain's link through this event (projections/audit/chain.py)

Personal data stays encrypted: the payload is copied as stored. Only the event's timestamp is
read from it on the way (for recorded_at); nothing else of what it says is written.

Layout of DIR:

    manifest.json                               what follows, and the seals that cover it
    events-000000000001-000000004096.parquet    the events after 0 and through 4096
    events-000000004097-000000008192.parquet    ...

A segment holds the events after one position and through another (its name says which, and
the next segment starts right after). Each is written to a temporary file, fsynced and renamed
into place, then the manifest (rewritten the same way) lists it with its row count, size,
SHA-256, the chain link before its first row and after its last, and the seal that covers it:
the newest seal (at the time of that export) whose position is at or after the segment's last
position. A segment after the newest seal is listed with no seal (未封印), and gets one the next
time the export runs after a seal covers it. Exporting again continues where the manifest ends.

`verify_export(DIR, keys)` (`ledger audit verify --export DIR`) needs only DIR and the public
key configured outside the database: it checks every segment's SHA-256 against the manifest,
that the segments follow one another with no gap or overlap, recomputes the chain over every row
with the chain's own function (chain_links) and compares each row's chain link, and checks each
covering seal's signature and that the chain reaches the seal's hash and event count at its
position. The first failure stops it, naming the segment.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pyarrow as pa
import pyarrow.parquet as pq

from projections.audit.chain import GENESIS, chain_links, next_link
from projections.audit.seals import seal_fault
from projections.audit.store import AuditStore
from projections.audit.trail import NO_PUBLIC_KEY, PUBLIC_SEAL_FIELDS, open_audit_store
from storage.event_store import EventLog
from storage.payload_codec import decoder_for

EXPORT_FORMAT = "union-ledger-export/1"
MANIFEST_NAME = "manifest.json"
SEGMENT_PREFIX = "events-"
SEGMENT_SUFFIX = ".parquet"
COLUMNS = ("position", "stream_id", "version", "topic", "recorded_at", "payload", "chain_link")
SCHEMA = pa.schema(
    [
        pa.field("position", pa.int64(), nullable=False),
        pa.field("stream_id", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC")),
        pa.field("payload", pa.binary(), nullable=False),
        pa.field("chain_link", pa.binary(32), nullable=False),
    ]
)
HASH_CHUNK_BYTES = 1 << 20


class ExportError(ValueError):
    """The export cannot be written as asked (a gap or overlap, another store's DIR)."""


class ExportDamaged(Exception):
    """Verification of an export failed; `segment` names where (None: the manifest itself)."""

    def __init__(self, segment: str | None, reason: str) -> None:
        where = f"segment {segment}: " if segment is not None else ""
        super().__init__(f"{where}{reason}")
        self.segment = segment
        self.reason = reason


def segment_name(after: int, through: int) -> str:
    return f"{SEGMENT_PREFIX}{after + 1:012d}-{through:012d}{SEGMENT_SUFFIX}"


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform without directory handles: the rename is what we have
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """write(temporary path) fills a temporary file beside `path`; it is fsynced and renamed."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    temporary = Path(name)
    try:
        write(temporary)
        with temporary.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """DIR's manifest, None when there is none; ExportDamaged when it is not one."""
    path = directory / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportDamaged(None, f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise ExportDamaged(None, f"{path} is not a {EXPORT_FORMAT} manifest")
    if not isinstance(manifest.get("segments"), list) or not isinstance(
        manifest.get("seals"), dict
    ):
        raise ExportDamaged(None, f"{path} lists no segments or seals")
    return manifest


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    _write_atomically(directory / MANIFEST_NAME, lambda p: p.write_text(text, encoding="utf-8"))


# --- export --------------------------------------------------------------------------------


@dataclass(slots=True)
class ExportResult:
    directory: Path
    segments_written: list[str] = field(default_factory=list)
    events_written: int = 0
    through: int = 0
    unsealed_segments: int = 0
    seals_attached: int = 0


def _recorded_at(
    mapper: Any, row: tuple[int, str, int, str, bytes, bytes]
) -> datetime.datetime | None:
    """The event's timestamp, read from its payload (only that is kept); None if unreadable."""
    _, stream, version, topic, state, _ = row
    try:
        fields = decoder_for(mapper).decode(stream, version, topic, state)
        timestamp: datetime.datetime = fields["timestamp"]
    except Exception:  # a payload that no longer opens: the chain check above judges the row
        return None
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=datetime.UTC)
    return timestamp


def _segment_table(rows: list[tuple[int, str, int, str, bytes, bytes]], mapper: Any) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for row in rows:
        position, stream, version, topic, state, link = row
        columns["position"].append(position)
        columns["stream_id"].append(stream)
        columns["version"].append(version)
        columns["topic"].append(topic)
        columns["recorded_at"].append(_recorded_at(mapper, row))
        columns["payload"].append(state)
        columns["chain_link"].append(link)
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def _as_row(row: tuple[Any, ...]) -> tuple[int, str, int, str, bytes, bytes]:
    position, stream, version, topic, state, link = row
    if isinstance(stream, UUID):
        stream = stream.hex
    elif isinstance(stream, bytes):
        stream = stream.decode("ascii")
    if link is None:
        raise ExportError(
            f"the stored event at position {position} was never chained: it was inserted "
            "among chained events (事件被插入); run `ledger audit verify`"
        )
    return int(position), str(stream), int(version), str(topic), bytes(state), bytes(link)


def _covering_seal(seals: list[dict[str, Any]], through: int) -> dict[str, Any] | None:
    """The newest seal whose position is at or after `through`."""
    covering = [s for s in seals if s["position"] >= through]
    return max(covering, key=lambda s: (s["position"], s["seal_id"]), default=None)


def _attach_seals(manifest: dict[str, Any], seals: list[dict[str, Any]]) -> int:
    """Names the covering seal of every segment that has none yet; how many it named. Only
    seals within the export count: verification checks a seal where the chain reaches it."""
    seals = [s for s in seals if s["position"] <= manifest["through"]]
    attached = 0
    for segment in manifest["segments"]:
        if segment.get("seal_id") is not None:
            continue
        seal = _covering_seal(seals, segment["through"])
        if seal is None:
            continue
        public = {name: seal[name] for name in PUBLIC_SEAL_FIELDS if name in seal}
        manifest["seals"][str(seal["seal_id"])] = public
        segment["seal_id"] = seal["seal_id"]
        attached += 1
    return attached


def _start(
    store: AuditStore, manifest: dict[str, Any] | None, after: int | None, directory: Path
) -> tuple[dict[str, Any], int, int, bytes]:
    """The manifest to extend and where to go on: (manifest, after, ordinal, link there)."""
    if manifest is not None:
        through = int(manifest["through"])
        if after is not None and after != through:
            problem = "leave a gap" if after > through else "overlap it"
            raise ExportError(
                f"{directory} holds an export through position {through}; exporting after "
                f"{after} would {problem} (omit --after to go on from {through})"
            )
        segments = manifest["segments"]
        if segments:
            last = segments[-1]
            ordinal, link = last["events_before"] + last["rows"], bytes.fromhex(last["last_link"])
        else:
            ordinal, link = manifest["events_before"], bytes.fromhex(manifest["previous_link"])
        recorded = store.link_at(through)
        if recorded is None or recorded.link != link or recorded.ordinal != ordinal:
            raise ExportError(
                f"{directory} holds an export of another store (or of this one before it was "
                f"altered): its chain link at position {through} is not this store's"
            )
        return manifest, through, ordinal, link
    start = after or 0
    if start < 0:
        raise ExportError("--after is a position, 0 or more")
    tip = store.link_at(start)
    if tip is None:
        raise ExportError(
            f"position {start} is not an event of the audit chain: --after must name the "
            "position of an event (or 0)"
        )
    fresh = {
        "format": EXPORT_FORMAT,
        "chain": "union-ledger audit chain v1 (projections/audit/chain.py)",
        "starts_after": start,
        "events_before": tip.ordinal,
        "previous_link": tip.link.hex(),
        "through": start,
        "segments": [],
        "seals": {},
    }
    return fresh, start, tip.ordinal, tip.link


def export_log(
    ledger: EventLog,
    directory: Path | str,
    *,
    after: int | None = None,
    segment_events: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Writes the events after the export in `directory` (or after `after`: a new export)
    through the chain's head, chaining any not yet chained first. on_progress(position, head)."""
    directory = Path(directory)
    per_segment = segment_events or ledger.settings.export_segment_events
    if per_segment < 1:
        raise ExportError("a segment holds 1 event or more")
    directory.mkdir(parents=True, exist_ok=True)
    store = open_audit_store(ledger)
    store.ensure_tables()
    head = store.extend_chain()
    manifest, start, ordinal, link = _start(store, read_manifest(directory), after, directory)
    seals = [s for s in store.seals() if s["position"] <= head.position]
    result = ExportResult(directory, through=start)
    mapper = ledger.mapper

    def write_segment(rows: list[tuple[int, str, int, str, bytes, bytes]]) -> None:
        nonlocal start, ordinal, link
        through = rows[-1][0]
        name = segment_name(start, through)
        table = _segment_table(rows, mapper)
        _write_atomically(
            directory / name,
            lambda p: pq.write_table(table, p, compression="zstd", write_statistics=True),
        )
        path = directory / name
        manifest["segments"].append(
            {
                "file": name,
                "after": start,
                "through": through,
                "rows": len(rows),
                "bytes": path.stat().st_size,
                "sha256": file_sha256(path),
                "events_before": ordinal,
                "previous_link": link.hex(),
                "last_link": rows[-1][5].hex(),
                "seal_id": None,
            }
        )
        start, ordinal, link = through, ordinal + len(rows), rows[-1][5]
        manifest["through"] = through
        result.seals_attached += _attach_seals(manifest, seals)
        manifest["written_at"] = datetime.datetime.now(datetime.UTC).isoformat()
        _write_manifest(directory, manifest)  # after every segment: a crash loses no segment
        result.segments_written.append(name)
        result.events_written += len(rows)
        result.through = through
        if on_progress is not None:
            on_progress(through, head.position)

    running = link
    with store.chained_rows(start, head.position) as rows:
        batch: list[tuple[int, str, int, str, bytes, bytes]] = []
        for raw in rows:
            row = _as_row(raw)
            # An export of a damaged store would only fail its verification: refuse it here.
            running = next_link(running, *row[:5])
            if running != row[5]:
                raise ExportError(
                    f"the stored event at position {row[0]} does not match its audit chain "
                    "link (changed, removed or inserted: 事件与审计链不符); nothing after "
                    f"position {start} was exported: run `ledger audit verify`"
                )
            batch.append(row)
            if len(batch) == per_segment:
                write_segment(batch)
                batch = []
        if batch:
            write_segment(batch)
    if not result.segments_written:
        # Nothing new; seals made since the last run may now cover segments listed unsealed.
        result.seals_attached += _attach_seals(manifest, seals)
        manifest["written_at"] = datetime.datetime.now(datetime.UTC).isoformat()
        _write_manifest(directory, manifest)
    result.through = int(manifest["through"])
    result.unsealed_segments = sum(s.get("seal_id") is None for s in manifest["segments"])
    return result


# --- offline verification ------------------------------------------------------------------


def _read_segment(path: Path, name: str) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ExportDamaged(name, f"cannot be read as Parquet ({exc})") from None
    if not table.schema.equals(SCHEMA, check_metadata=False):
        raise ExportDamaged(name, "its columns are not an export's (另一格式的文件)")
    return table


def _segment_rows(table: pa.Table) -> Iterator[tuple[int, str, int, str, bytes, bytes]]:
    columns = [table.column(name).to_pylist() for name in COLUMNS]
    positions, streams, versions, topics, _, payloads, links = columns
    return zip(positions, streams, versions, topics, payloads, links, strict=True)


def _expect(condition: bool, segment: str | None, reason: str) -> None:
    if not condition:
        raise ExportDamaged(segment, reason)


def verify_export(
    directory: Path | str,
    trusted_public_keys: set[str],
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Checks an export in `directory` with no database; ExportDamaged names the first bad
    segment. Returns a report: segments and events checked, how far seals prove it, and which
    segments no seal covers yet."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None:
        raise ExportDamaged(None, f"{directory} holds no {MANIFEST_NAME}: not an export")
    if not trusted_public_keys:
        raise ExportDamaged(None, NO_PUBLIC_KEY)
    segments: list[dict[str, Any]] = manifest["segments"]
    seals: dict[str, dict[str, Any]] = manifest["seals"]
    try:
        expected_after = int(manifest["starts_after"])
        ordinal = int(manifest["events_before"])
        link = bytes.fromhex(manifest["previous_link"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportDamaged(None, f"the manifest's start is malformed ({exc})") from None
    if expected_after == 0:
        _expect(
            ordinal == 0 and link == GENESIS,
            None,
            "an export from the start must begin at the chain's genesis",
        )
    # Where each seal must be met: position -> the seal ids there.
    wanted: dict[int, list[str]] = {}
    for seal_id, seal in seals.items():
        _expect(isinstance(seal.get("position"), int), None, f"seal {seal_id} is malformed")
        wanted.setdefault(seal["position"], []).append(seal_id)
    met: dict[int, tuple[int, bytes, str]] = {}  # seal position -> (ordinal, link, segment)
    head = int(manifest.get("through", 0))
    events = 0
    for segment in segments:
        name = str(segment.get("file"))
        try:
            after, through, rows = int(segment["after"]), int(segment["through"]), segment["rows"]
            sha, size = segment["sha256"], int(segment["bytes"])
            before, previous = (
                int(segment["events_before"]),
                bytes.fromhex(segment["previous_link"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ExportDamaged(name, f"its manifest entry is malformed ({exc})") from None
        _expect(name == segment_name(after, through), name, "its name is not its position range")
        if after > expected_after:
            raise ExportDamaged(
                name,
                f"positions {expected_after + 1} to {after} are missing before it (a segment "
                "was removed: 缺少分段)",
            )
        _expect(
            after == expected_after,
            name,
            f"it overlaps the segment before it (it starts "
            f"after {after}, that one ends at {expected_after})",
        )
        _expect(
            before == ordinal and previous == link,
            name,
            "its chain does not continue from the segment before it",
        )
        path = directory / name
        _expect(path.is_file(), name, "the file is missing (分段文件缺失)")
        _expect(
            path.stat().st_size == size,
            name,
            f"it holds {path.stat().st_size} bytes, the "
            f"manifest says {size} (truncated or replaced: 分段被截断或替换)",
        )
        _expect(
            file_sha256(path) == sha,
            name,
            "its SHA-256 is not the manifest's (altered, "
            "truncated or from another export: 分段被篡改)",
        )
        table = _read_segment(path, name)
        _expect(
            table.num_rows == rows,
            name,
            f"it holds {table.num_rows} rows, the manifest says {rows}",
        )
        last_position = after
        recorded = _segment_rows(table)
        chain_input = []
        recorded_links = []
        for position, stream, version, topic, payload, row_link in recorded:
            _expect(position > last_position, name, f"position {position} is out of order")
            last_position = position
            chain_input.append((position, stream, version, topic, payload))
            recorded_links.append(row_link)
        _expect(
            last_position == through,
            name,
            f"its last event is at {last_position}, not at {through}",
        )
        for (position, computed), row_link in zip(
            chain_links(chain_input, previous=link), recorded_links, strict=True
        ):
            ordinal += 1
            _expect(
                computed == row_link,
                name,
                f"the event at position {position} does not match its chain link (事件被篡改)",
            )
            link = computed
            if position in wanted:
                met[position] = (ordinal, computed, name)
        _expect(
            link.hex() == segment.get("last_link"),
            name,
            "its last chain link is not the manifest's",
        )
        expected_after = through
        events += rows
        if on_progress is not None:
            on_progress(through, head)
    _expect(
        expected_after == head,
        None,
        f"the manifest says the export ends at {head}, its "
        f"segments at {expected_after} (a segment was removed from the manifest)",
    )
    # Seals: each must be signed by a configured key and met by the recomputed chain.
    proven_through = 0
    unsealed: list[str] = []
    for segment in segments:
        name = segment["file"]
        seal_id = segment.get("seal_id")
        if seal_id is None:
            unsealed.append(name)
            continue
        seal = seals.get(str(seal_id))
        _expect(seal is not None, name, f"its seal {seal_id} is not in the manifest")
        assert seal is not None
        fault = seal_fault(seal, trusted_public_keys)
        _expect(fault is None, name, f"its seal at position {seal['position']}: {fault}")
        _expect(
            seal["position"] >= segment["through"],
            name,
            f"the seal at position "
            f"{seal['position']} does not cover it (it ends at {segment['through']})",
        )
        _expect(
            seal["position"] in met,
            name,
            f"the seal at position {seal['position']} that covers it is beyond the export's events",
        )
        at_ordinal, at_link, _ = met[seal["position"]]
        _expect(
            at_link.hex() == seal["chain_hash"] and at_ordinal == seal["event_count"],
            name,
            f"the chain does not reach the seal at position {seal['position']} "
            "(封印不符): events were changed, removed or added",
        )
        proven_through = max(proven_through, segment["through"])
    if events and proven_through == 0:
        raise ExportDamaged(
            None,
            "no seal covers any segment: nothing is proven (未封印); seal the store "
            "(`ledger audit seal`) and export again",
        )
    return {
        "ok": True,
        "segments_checked": len(segments),
        "events_checked": events,
        "starts_after": int(manifest["starts_after"]),
        "through": head,
        "proven_through": proven_through,
        "unsealed_segments": unsealed,
    }
