"""Provenance (溯源): the raw event stream in position order, decoded and masked for auditors.

Every statement line names the position of the event that produced it; this is where an
auditor reads that event: when it was recorded, by whom, and what it said. Personal data is
masked here by domain/privacy.py as everywhere else (unless the reader may see it, and then
the reading is recorded by the caller); what is never shown to anyone is left out here: a
token's secret hash, and the fingerprint of an idempotent request (a digest of the request,
personal data included).
"""

from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from domain.money import Money
from domain.organizations import Organization
from domain.privacy import mask
from domain.vouchers import Book
from storage.payload_codec import decoder_for

EVENT_ENVELOPE = ("originator_id", "originator_version", "timestamp", "originator_topic", "actor")
PERSON_TOPIC_PREFIX = "ledger:Member."
SECRET_KEYS = frozenset({"secret_hash"})
# Left out of the stream altogether, top level of an event's data.
HIDDEN_KEYS = frozenset({"fingerprint"})


def json_ready(value: Any) -> Any:
    """Event attribute values as JSON: dates ISO, money as exact decimal strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, UUID | Decimal | Fraction):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_ready(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_ready(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def without_secrets(data: dict[str, Any]) -> dict[str, Any]:
    """Event data as anyone may see it: hidden keys left out, secrets starred."""
    return {
        key: "***" if key in SECRET_KEYS else value
        for key, value in data.items()
        if key not in HIDDEN_KEYS
    }


def mentions(value: Any, code: str) -> bool:
    """True when the code appears as a value or a key anywhere in JSON-ready data."""
    if isinstance(value, str):
        return value == code
    if isinstance(value, dict):
        return any(k == code or mentions(v, code) for k, v in value.items())
    if isinstance(value, list):
        return any(mentions(v, code) for v in value)
    return False


def own_stream_ids(code: str) -> frozenset[UUID]:
    """The streams that belong to an organisation: its own and its book's."""
    return frozenset({Organization.id_for(code), Book.id_for(code)})


def decode(mapper: Any, notification: Notification) -> tuple[dict[str, Any] | None, Any, str]:
    """(unmasked JSON-ready data, the event's attributes or None, an error text). The payload
    is decoded without building a domain event (storage/payload_codec.py): the same
    attributes, the same values."""
    try:
        fields = decoder_for(mapper).decode(
            notification.originator_id,
            notification.originator_version,
            notification.topic,
            notification.state,
        )
    except Exception as exc:  # a tampered row or an unknown topic must still be listed
        return None, None, f"cannot decode this event ({type(exc).__name__}): it may be altered"
    attributes = {k: v for k, v in fields.items() if k not in EVENT_ENVELOPE}
    return json_ready(attributes), SimpleNamespace(**fields), ""


def is_person_topic(topic: str) -> bool:
    """Whether the events of this topic are a person's own (a member's record)."""
    return topic.startswith(PERSON_TOPIC_PREFIX)


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """An unmasked record of the stream (event_record(unmasked=True)) as event_record masks it."""
    data = record.get("data")
    if data is None:
        return record
    return {**record, "data": mask(data, person=is_person_topic(record["type"]))}


def event_record(
    notification: Notification,
    data: dict[str, Any] | None,
    event: Any,
    error: str,
    *,
    unmasked: bool = False,
) -> dict[str, Any]:
    """One event as the stream lists it; its data masked unless `unmasked`."""
    if data is not None:
        data = without_secrets(data)
        if not unmasked:
            data = mask(data, person=is_person_topic(notification.topic))
    timestamp = getattr(event, "timestamp", None)
    record: dict[str, Any] = {
        "position": notification.id,
        "recorded_at": timestamp.isoformat() if timestamp is not None else None,
        "stream_id": str(notification.originator_id),
        "version": notification.originator_version,
        "type": notification.topic,
        "data": data,
        "actor": getattr(event, "actor", None),
    }
    if error:
        record["decode_error"] = error
    return record
