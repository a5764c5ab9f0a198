"""The hash chain over the event log (审计哈希链) and its verification, free of any database.

Link n hashes link n-1 together with event n exactly as stored: position, stream id, version,
topic and the encrypted, compressed payload bytes. Nothing is decrypted, so anyone holding a
copy of the rows (and no key) can recompute the chain.

    link_0 = SHA-256("union-ledger audit chain v1")
    link_n = SHA-256(link_{n-1} || frame(event_n))
    frame  = position (i64 BE) || version (i64 BE) || len(stream id) (u32 BE)
             || len(topic) (u32 BE) || len(payload) (u32 BE) || stream id || topic || payload

The stream id is the 32-character lowercase hex form of the UUID (as SQLite stores it, and as
PostgreSQL's uuid prints without dashes), so both stores give the same chain for the same rows.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

GENESIS = hashlib.sha256(b"union-ledger audit chain v1").digest()
MAX_PROBLEMS = 100  # a badly damaged store must not produce an unbounded report

_HEADER = struct.Struct(">qqIII")
_NO_SEAL = 2**63
_ODD_INTEGER = -(2**63)  # marks a position or version that a tamperer made non-integer
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One row of the events table, exactly as stored."""

    position: int
    stream_id: Any  # str (SQLite) or UUID (PostgreSQL)
    version: int
    topic: Any
    state: Any


def _as_bytes(value: Any) -> bytes:
    """Stored bytes; a value whose column type was tampered with is hashed in its text form."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, UUID):
        return value.hex.encode("ascii")
    if value is None:
        return b""
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def _is_int64(value: Any) -> bool:
    return type(value) is int and _ODD_INTEGER <= value < 2**63


def frame(position: int, stream_id: Any, version: int, topic: Any, state: Any) -> bytes:
    stream = _as_bytes(stream_id)
    topic_bytes = _as_bytes(topic)
    payload = _as_bytes(state)
    if not (_is_int64(position) and _is_int64(version)):
        # Only a tampered row gets here; it must be hashed (and fail), not crash the check.
        stream = f"{position!r}|{version!r}|".encode() + stream
        position = position if _is_int64(position) else _ODD_INTEGER
        version = version if _is_int64(version) else _ODD_INTEGER
    header = _HEADER.pack(position, version, len(stream), len(topic_bytes), len(payload))
    return header + stream + topic_bytes + payload


def next_link(
    previous: bytes, position: int, stream_id: Any, version: int, topic: Any, state: Any
) -> bytes:
    return _sha256(previous + frame(position, stream_id, version, topic, state)).digest()


def chain_links(
    rows: Iterable[tuple[int, Any, int, Any, Any]], previous: bytes = GENESIS
) -> Iterator[tuple[int, bytes]]:
    """(position, link) for each row (position, stream id, version, topic, state) in order."""
    for position, stream_id, version, topic, state in rows:
        previous = next_link(previous, position, stream_id, version, topic, state)
        yield position, previous


# --- verification --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealPoint:
    """What a verified seal asserts: the chain through `position` has this hash."""

    position: int
    chain_hash: bytes
    event_count: int
    source: str  # "store" or "file"


@dataclass(slots=True)
class Problem:
    position: int | None
    kind: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "reason": self.reason}


@dataclass(slots=True)
class ChainCheck:
    """The outcome of one pass over the rows: problems found, and how far seals prove."""

    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    events_checked: int = 0
    head_position: int = 0
    matched_seal_positions: list[int] = field(default_factory=list)
    unsealed_events: int = 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    @property
    def first_bad(self) -> Problem | None:
        located = [p for p in self.problems if p.position is not None]
        if located:
            return min(located, key=lambda p: p.position)
        return self.problems[0] if self.problems else None


class _Segment:
    """The stretch after one seal: its problems are judged when the next seal is checked."""

    def __init__(self, start_after: int) -> None:
        self.start_after = start_after
        self.first_row_position: int | None = None
        self.problems: list[Problem] = []


class _ChainWalk:
    """One pass over rows, recorded links and seals, all in position order."""

    def __init__(self, links: Iterable[tuple[int, bytes]], seals: list[SealPoint]) -> None:
        self.check = ChainCheck()
        self.seals = sorted(seals, key=lambda s: s.position)
        self.seal_index = 0
        self.last_seal_position = self.seals[-1].position if self.seals else 0
        self.running = GENESIS  # recomputed from the rows alone; restarts at every seal
        self.count = 0
        self.recorded_prev = GENESIS  # the recorded link before the current position
        self.links = iter(links)
        self.next_recorded = next(self.links, None)
        self.segment = _Segment(0)
        self.last_row_position = 0

    def note(self, problem: Problem) -> None:
        self.check.add(problem)
        self.segment.problems.append(problem)

    def row(self, position: int, stream_id: Any, version: int, topic: Any, state: Any) -> None:
        while self.next_recorded is not None and self.next_recorded[0] < position:
            self.close_seals_before(self.next_recorded[0])
            self.missing(*self.next_recorded)
        self.close_seals_before(position)
        if self.segment.first_row_position is None:
            self.segment.first_row_position = position
        record = frame(position, stream_id, version, topic, state)
        before = self.running
        self.running = _sha256(before + record).digest()
        self.count += 1
        if self.next_recorded is not None and self.next_recorded[0] == position:
            recorded = self.next_recorded[1]
            # In an intact store the two bases agree and one hash serves both comparisons.
            if self.recorded_prev == before:
                local = self.running
            else:
                local = _sha256(self.recorded_prev + record).digest()
            if local != recorded:
                self.note(
                    Problem(
                        position,
                        "event_changed",
                        f"position {position}: the event differs from the one chained "
                        "(changed, replaced or moved; 事件被篡改)",
                    )
                )
            self.recorded_prev = recorded
            self.next_recorded = next(self.links, None)
        elif self.next_recorded is not None:
            self.note(
                Problem(
                    position,
                    "event_inserted",
                    f"position {position}: an event that was never chained sits among "
                    "chained ones (事件被插入)",
                )
            )
        if position > self.last_seal_position:
            self.check.unsealed_events += 1
        self.check.events_checked += 1
        self.last_row_position = position

    def missing(self, position: int, recorded: bytes) -> None:
        self.note(
            Problem(
                position,
                "event_missing",
                f"position {position}: a chained event is missing (事件被删除)",
            )
        )
        self.recorded_prev = recorded
        self.next_recorded = next(self.links, None)

    def finish(self) -> ChainCheck:
        while self.next_recorded is not None:
            self.close_seals_before(self.next_recorded[0])
            self.missing(*self.next_recorded)
        self.close_seals_before(_NO_SEAL, at_end=True)
        self.check.head_position = self.last_row_position
        return self.check

    def close_seals_before(self, position: int, *, at_end: bool = False) -> None:
        """Checks every seal whose position lies before `position`: all its rows are in."""
        while self.seal_index < len(self.seals) and self.seals[self.seal_index].position < position:
            group_position = self.seals[self.seal_index].position
            computed, computed_count = self.running, self.count
            matched = False
            while (
                self.seal_index < len(self.seals)
                and self.seals[self.seal_index].position == group_position
            ):
                seal = self.seals[self.seal_index]
                self.seal_index += 1
                if seal.chain_hash == computed:
                    matched = True
                    continue
                self.seal_mismatch(seal, computed_count, at_end=at_end)
                # The seal is signed: the next stretch is judged from what it asserts.
                self.running, self.count = seal.chain_hash, seal.event_count
            if matched:
                self.check.matched_seal_positions.append(group_position)
                for problem in self.segment.problems:
                    # The rows match a signed seal, so only the recorded links can be wrong.
                    problem.kind = "chain_table_altered"
                    problem.reason = (
                        f"position {problem.position}: the audit_chain table was altered "
                        f"(审计链记录被改动); the events match the seal at {group_position}"
                    )
            self.segment = _Segment(group_position)

    def seal_mismatch(self, seal: SealPoint, computed_count: int, *, at_end: bool) -> None:
        segment = self.segment
        what = f"the seal at position {seal.position} ({seal.source}) does not match (封印不符)"
        located = [p.position for p in segment.problems if p.position is not None]
        if located:
            position = min(located)
            reason = f"{what}: see position {position}"
        elif at_end and seal.position > self.last_row_position:
            position = max(self.last_row_position, segment.start_after) + 1
            reason = (
                f"{what}: it covers {seal.event_count} events but the store holds "
                f"{computed_count} through it and ends at position {self.last_row_position}; "
                "the newest sealed events were removed (尾部事件被删除)"
            )
        else:
            position = segment.first_row_position or segment.start_after + 1
            reason = (
                f"{what}: an event after position {segment.start_after} and up to "
                f"{seal.position} was changed, removed or inserted, and the audit_chain table "
                f"was rewritten to hide it (the store holds {computed_count} events through "
                f"that position, the seal {seal.event_count})"
            )
        self.check.add(Problem(position, "seal_mismatch", reason))


def check_chain(
    rows: Iterable[tuple[int, Any, int, Any, Any]],
    links: Iterable[tuple[int, bytes]],
    seals: list[SealPoint],
    on_progress: Any = None,
    progress_every: int = 50_000,
    known_problems: Iterable[Problem] = (),
) -> ChainCheck:
    """Recomputes the chain from the rows and compares it with the recorded links and seals.

    Two comparisons, with different jobs:
    - Seals are the proof. The chain recomputed from the rows alone must equal every (already
      signature-checked) seal at its position. After each seal the running hash restarts from
      the seal's hash, so every stretch between two seals is judged on its own.
    - Recorded links (audit_chain) locate. Each row is hashed onto the recorded link before it
      and compared with its own recorded link, so a changed, missing or inserted row is named
      at its exact position, without reporting every row after it as well.
    A stretch whose seal matches proves its rows intact; local mismatches inside it can then
    only be alterations of the audit_chain table itself, and are reported as such.
    """
    walk = _ChainWalk(links, seals)
    check = walk.check
    for problem in known_problems:  # first, so that the report's cap never drops them
        check.add(problem)
    seals_in_order = walk.seals
    links_iter = walk.links
    last_seal = walk.last_seal_position
    pack, sha, join = _HEADER.pack, _sha256, b"".join
    # The walk's state in locals: the common row (intact, in step with the recorded links,
    # no seal to close) is handled inline; anything else goes through walk.row().
    running, prev, recorded, count = walk.running, walk.recorded_prev, walk.next_recorded, 0
    next_seal = seals_in_order[0].position if seals_in_order else _NO_SEAL
    last_position = 0
    fast_checked = fast_unsealed = 0
    started = False
    countdown = progress_every
    for position, stream_id, version, topic, state in rows:
        countdown -= 1
        if countdown == 0:
            countdown = progress_every
            if on_progress is not None:
                on_progress(position)
        if started and position <= next_seal and type(state) is bytes and type(topic) is str:
            kind = type(stream_id)
            if kind is str:
                stream = stream_id.encode()
            elif kind is UUID:
                stream = stream_id.hex.encode()
            else:
                stream = None
            if stream is not None:
                topic_bytes = topic.encode()
                try:
                    header = pack(position, version, len(stream), len(topic_bytes), len(state))
                except struct.error:
                    header = None
                if header is not None:
                    if recorded is None:  # past the recorded links: unsealed events
                        running = sha(join((running, header, stream, topic_bytes, state))).digest()
                        count += 1
                        fast_checked += 1
                        if position > last_seal:
                            fast_unsealed += 1
                        last_position = position
                        continue
                    if recorded[0] == position and prev == running:
                        digest = sha(join((running, header, stream, topic_bytes, state))).digest()
                        if digest == recorded[1]:
                            running = prev = digest
                            recorded = next(links_iter, None)
                            count += 1
                            fast_checked += 1
                            if position > last_seal:
                                fast_unsealed += 1
                            last_position = position
                            continue
        walk.running, walk.recorded_prev, walk.next_recorded = running, prev, recorded
        walk.count, walk.last_row_position = count, last_position
        walk.row(position, stream_id, version, topic, state)
        running, prev, recorded = walk.running, walk.recorded_prev, walk.next_recorded
        count, last_position = walk.count, walk.last_row_position
        next_seal = (
            seals_in_order[walk.seal_index].position
            if walk.seal_index < len(seals_in_order)
            else _NO_SEAL
        )
        started = True
    walk.running, walk.recorded_prev, walk.next_recorded = running, prev, recorded
    walk.count, walk.last_row_position = count, last_position
    check.events_checked += fast_checked
    check.unsealed_events += fast_unsealed
    walk.finish()
    if on_progress is not None:
        on_progress(check.head_position)
    return check
