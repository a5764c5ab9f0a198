"""Provenance (溯源): the raw event stream in position order, decoded and masked for auditors.

Every statement line names the position of the event that produced it; this is where an
auditor reads that event: when it was recorded, by whom, and what it said. Personal data is
masked here as everywhere else: identity numbers as 110105********002X, mobile numbers as
138****5678, personal names as 张*.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import re
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from domain.identity import mask_id_number, mask_mobile
from domain.money import Money
from domain.organisations import Organisation
from domain.vouchers import Book

# Aggregates defined outside domain/ register their topics when imported; decoding their
# events needs them registered even in a process that never imported them (the CLI).
SERVICE_AGGREGATE_MODULES = ("service.idempotency", "service.tokens", "service.pii_reads",
                             "service.searches")
EVENT_ENVELOPE = ("originator_id", "originator_version", "timestamp", "originator_topic", "actor")
PERSON_TOPIC_PREFIX = "ledger:Member."
SECRET_KEYS = frozenset({"secret_hash"})
FREE_TEXT_KEYS = frozenset({"note", "description", "reason", "purpose", "approval_ref"})
# An identity number or a mobile number typed into free text is masked all the same.
_ID_NUMBER_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_MOBILE_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


@cache
def register_service_topics() -> None:
    for name in SERVICE_AGGREGATE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue  # a module not (yet) in this deployment has no stored events either


def mask_name(name: Any) -> Any:
    """张三 -> 张*, 欧阳娜娜 -> 欧***: the family name's first character stays."""
    if not isinstance(name, str) or not name:
        return name
    if len(name) == 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


def _mask_text(text: str) -> str:
    text = _ID_NUMBER_IN_TEXT.sub(lambda m: mask_id_number(m.group(0)), text)
    return _MOBILE_IN_TEXT.sub(lambda m: mask_mobile(m.group(0)) or "", text)


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


def mask(value: Any, *, person: bool) -> Any:
    """Masks personal data in JSON-ready event data.

    `name` is a person's name in a member's events and in any object that describes a member
    (it has an id_number or member_id beside it); elsewhere it names a union and stays.
    """
    if isinstance(value, list):
        return [mask(v, person=person) for v in value]
    if not isinstance(value, dict):
        return value
    person_here = person or "id_number" in value or "member_id" in value
    masked: dict[str, Any] = {}
    for key, item in value.items():
        if key == "id_number" and isinstance(item, str):
            masked[key] = mask_id_number(item) if len(item) == 18 else "*" * len(item)
        elif key == "mobile" and isinstance(item, str):
            masked[key] = mask_mobile(item)
        elif key == "name" and person_here:
            masked[key] = mask_name(item)
        elif key in SECRET_KEYS:
            masked[key] = "***"
        elif key in FREE_TEXT_KEYS and isinstance(item, str):
            masked[key] = _mask_text(item)
        elif key == "changes" and person:
            masked[key] = mask(item, person=True)
        else:
            masked[key] = mask(item, person=False)
    return masked


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
    return frozenset({Organisation.id_for(code), Book.id_for(code)})


def decode(mapper: Any, notification: Notification) -> tuple[dict[str, Any] | None, Any, str]:
    """(unmasked JSON-ready data, the event or None, an error text)."""
    try:
        event = mapper.to_domain_event(notification)
    except Exception as exc:  # a tampered row or an unknown topic must still be listed
        return None, None, f"cannot decode this event ({type(exc).__name__}): it may be altered"
    attributes = {k: v for k, v in vars(event).items() if k not in EVENT_ENVELOPE}
    return json_ready(attributes), event, ""


def event_record(notification: Notification, data: dict[str, Any] | None, event: Any,
                 error: str) -> dict[str, Any]:
    person = notification.topic.startswith(PERSON_TOPIC_PREFIX)
    timestamp = getattr(event, "timestamp", None)
    record: dict[str, Any] = {
        "position": notification.id,
        "recorded_at": timestamp.isoformat() if timestamp is not None else None,
        "stream_id": str(notification.originator_id),
        "version": notification.originator_version,
        "type": notification.topic,
        "data": None if data is None else mask(data, person=person),
        "actor": getattr(event, "actor", None),
    }
    if error:
        record["decode_error"] = error
    return record
