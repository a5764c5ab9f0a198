"""Idempotency keys: a retried command returns its first result and writes nothing.

The record is an aggregate whose id derives from (scope, key) and is saved in the same atomic
write as the command's own events, so two racing duplicates cannot both succeed: the loser hits
the event store's uniqueness constraint, retries, and finds the winner's record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

from domain.base import stable_id
from domain.errors import InvalidValue
from storage.transcodings import PLAIN_SCALARS

MAX_KEY_LENGTH = 128
# What a key is (1-128 visible ASCII characters): the one statement of the rule, which the
# HTTP layer declares to FastAPI and checks on its short way (api/security.py, api/hot_posts.py).
KEY_PATTERN = rf"[!-~]{{1,{MAX_KEY_LENGTH}}}"
_VISIBLE_ASCII = re.compile(r"[!-~]*")


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's key, scoped to the organisation of the token that sent it ("*": everywhere)."""

    scope: str
    key: str

    @classmethod
    def parse(cls, scope: str, key: str) -> IdempotencyKey:
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise InvalidValue("Idempotency-Key", f"1 to {MAX_KEY_LENGTH} characters")
        if not _VISIBLE_ASCII.fullmatch(key):
            raise InvalidValue("Idempotency-Key", "visible ASCII characters only, no spaces")
        return cls(scope, key)

    @property
    def record_id(self) -> UUID:
        return stable_id("idempotency", f"{self.scope}\x00{self.key}")


KEYED_PREFIX = "hmac-sha256:"


def _canonical(command: str, request: dict[str, Any]) -> bytes:
    """The request's canonical text: the standard library's JSON, keys sorted, compact, any
    value of another type written as its str(). A request of plain JSON values only (strings,
    integers, booleans, None, lists, tuples, dicts with string keys: every roster chunk, most
    commands) is written by orjson, whose bytes for those are the same (a property test shows
    it): 1.2 ms for a chunk of 1,000 roster rows, the check of its types included, against
    3.6 ms."""
    document = {"command": command, "request": request}
    if _plain_json(request):
        try:
            return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # an integer past 64 bits, a lone surrogate
            pass
    return json.dumps(
        document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    ).encode("utf-8")


def _plain_json(value: Any) -> bool:
    """Whether value holds nothing but plain JSON: PLAIN_SCALARS in lists, tuples and dicts
    with string keys, exactly those types (not subclasses such as an enum)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key in item:
                if type(key) is not str:
                    return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind not in PLAIN_SCALARS:
            return False
    return True


class Fingerprint:
    """A digest of a command and its arguments, to tell a true retry from a reused key.

    Keyed (HMAC-SHA256 under a key derived from the master key): a request holds personal
    data, and a plain hash of one is brute-forced back to a mobile number in milliseconds.
    Records stored before fingerprints were keyed hold a plain SHA-256 of the same canonical
    text; matches() accepts either, so that a retry of such a request still replays.
    """

    __slots__ = ("_canonical", "keyed")

    def __init__(self, key: bytes, command: str, request: dict[str, Any]) -> None:
        self._canonical = _canonical(command, request)
        self.keyed = KEYED_PREFIX + hmac.new(key, self._canonical, hashlib.sha256).hexdigest()

    def matches(self, stored: str) -> bool:
        """Whether a record's fingerprint is this request's (keyed, or plain as of old)."""
        if not isinstance(stored, str):
            return False
        if stored.startswith(KEYED_PREFIX):
            return hmac.compare_digest(stored, self.keyed)
        return hmac.compare_digest(stored, legacy_fingerprint(self._canonical))


def legacy_fingerprint(canonical: bytes) -> str:
    """How fingerprints were stored before they were keyed: a plain SHA-256, hex."""
    return hashlib.sha256(canonical).hexdigest()


def plain_fingerprint(command: str, request: dict[str, Any]) -> str:
    """The unkeyed fingerprint old records hold (for reading them, and for tests that write
    one the old way); never stored any more."""
    return legacy_fingerprint(_canonical(command, request))
