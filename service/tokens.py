"""API tokens (访问令牌): a role, an organisation scope and a personal-data flag, stored hashed.

A token is `<token id>.<secret>`. Only a keyed hash of the secret is stored, in a Token
aggregate in the same event store as everything else (so it is encrypted at rest by the same
cipher, and shared by every server process on the database). The id part lets a presented
token be found with one lookup; the hash comparison is constant-time.

A token expires (365 days after minting unless told otherwise) and can be revoked. Each server
process remembers the tokens it has verified, but trusts that memory for REVALIDATE_S only: after
that it reads the token again (one small aggregate, fetched by id), so that a revocation written
by any process, or an expiry, turns the token away on every process within a few seconds.

Minting and revoking are commands (service/commands/access.py), written by the ledger's one
writer like every other write.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from domain.access import DEFAULT_EXPIRY_DAYS, MINTED_TOPIC, Token
from domain.errors import InvalidValue, NotFound
from service.application import Ledger
from service.commands import MintToken, RevokeToken
from service.token_usage import TokenUsage
from storage import clock
from storage.keys import derive_key, load_or_create_key

ROLES = ("clerk", "auditor", "admin")
SECRET_BYTES = 32
MAX_TOKEN_LENGTH = 200
MAX_EXPIRY_DAYS = 3650
# How long a process answers from its memory of a verified token before reading it again.
# Revocation and expiry must reach every process within 5 s: 2 s of trust plus one read.
REVALIDATE_S = 2.0
# "Last used" is written at most this often per token per process (service/token_usage.py).
LAST_USED_EVERY_S = 60.0
# Verified tokens remembered per process; bounded like everything.
MAX_CACHED_TOKENS = 10_000
# Minting events read a page at a time when every token is listed.
MINTED_PAGE = 1_000

log = logging.getLogger("ledger.tokens")


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller of one request."""

    token_id: str
    role: str
    organization_code: str | None  # None: deployment-wide
    pii: bool

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"

    @property
    def idempotency_scope(self) -> str:
        return self.organization_code or "*"


@dataclass(frozen=True, slots=True)
class _Verified:
    """What a process remembers of a token it has verified, and when it last read it."""

    principal: Principal
    expires_at: datetime.datetime
    checked_at_s: float  # monotonic


def _parse_token_id(text: str) -> UUID:
    try:
        return UUID(text.strip())
    except (ValueError, AttributeError):
        raise InvalidValue("id", "a token id is a UUID, as `ledger token list` shows it") from None


class Tokens:
    """Mints, lists and revokes tokens, and verifies presented ones against the event store.

    now and monotonic are the clocks (wall and elapsed); tests pass their own."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        now: Callable[[], datetime.datetime] = clock.now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger = ledger
        self._key = derive_key(load_or_create_key(ledger.settings), "api-token")
        self._now = now
        self._monotonic = monotonic
        self._verified: dict[str, _Verified] = {}  # by keyed hash of the secret
        self._last_used_written: dict[str, float] = {}  # token id -> monotonic
        self._lock = threading.Lock()
        self.usage = TokenUsage(ledger.recorder)
        self.usage.ensure_table()

    def _hash(self, secret: str) -> str:
        return hmac.new(self._key, secret.encode("ascii"), hashlib.sha256).hexdigest()

    # --- writes ------------------------------------------------------------------------------

    def mint(
        self,
        *,
        role: str,
        organization_code: str | None = None,
        pii: bool = False,
        expires_in_days: int = DEFAULT_EXPIRY_DAYS,
        actor: str = "cli:token create",
    ) -> tuple[Principal, str]:
        """Stores a new token and returns it with its one-time plaintext form."""
        if role not in ROLES:
            raise InvalidValue("role", f"role is one of {', '.join(ROLES)}")
        if (
            isinstance(expires_in_days, bool)
            or not isinstance(expires_in_days, int)
            or not 1 <= expires_in_days <= MAX_EXPIRY_DAYS
        ):
            raise InvalidValue("expires_in", f"a token expires in 1 to {MAX_EXPIRY_DAYS} days")
        token_id = uuid4()
        secret = secrets.token_urlsafe(SECRET_BYTES)
        minted = self.ledger.execute(
            MintToken(
                token_id=token_id,
                role=role,
                organization_code=organization_code,
                pii=bool(pii),
                secret_hash=self._hash(secret),
                expires_at=self._now() + datetime.timedelta(days=expires_in_days),
            ),
            actor=actor,
        )
        organization_code = minted.body["organization_code"]
        principal = Principal(str(token_id), role, organization_code, bool(pii))
        return principal, f"{token_id.hex}.{secret}"

    def revoke(self, token_id: str, *, actor: str = "cli:token revoke") -> dict[str, Any]:
        """Revokes a token (NotFound for an unknown id). Revoking a revoked token changes
        nothing; the answer's `already_revoked` says so."""
        parsed = _parse_token_id(token_id)
        if self._get(parsed) is None:
            raise NotFound(f"no token has id {token_id.strip()[:40]}")
        revoked = self.ledger.execute(RevokeToken(token_id=parsed, at=self._now()), actor=actor)
        token = self._get(parsed)
        assert token is not None
        return {**self._describe(token, None), **revoked.body}

    # --- reads -------------------------------------------------------------------------------

    def _get(self, token_id: UUID) -> Token | None:
        try:
            token = self.ledger.repository.get(token_id)
        except AggregateNotFoundError:
            return None
        return token if isinstance(token, Token) else None

    @staticmethod
    def _describe(token: Token, last_used: datetime.datetime | None) -> dict[str, Any]:
        return {
            "id": str(token.id),
            "role": token.role,
            "organization_code": token.organization_code,
            "pii": token.pii,
            "created_at": token.created_on,
            "expires_at": token.expires_at,
            "last_used_at": last_used,
            "revoked_at": token.revoked_at,
        }

    def describe(self, token_id: str) -> dict[str, Any]:
        """One token without its secret (NotFound for an unknown id)."""
        token = self._get(_parse_token_id(token_id))
        if token is None:
            raise NotFound(f"no token has id {token_id.strip()[:40]}")
        return self._describe(token, self.usage.all().get(str(token.id)))

    def _minted_ids(self) -> list[UUID]:
        recorder, ids, start = self.ledger.recorder, [], 1
        while page := recorder.select_notifications(
            start=start, limit=MINTED_PAGE, topics=[MINTED_TOPIC]
        ):
            ids += [UUID(str(n.originator_id)) for n in page]
            start = page[-1].id + 1
        return ids

    def describe_all(self) -> list[dict[str, Any]]:
        """Every token without its secret, oldest first."""
        # Tokens have no index of their own: their minting events are found by topic, through
        # the recorder (a scan of the events table, for an operator's command; no request path
        # calls this).
        last_used = self.usage.all()
        tokens = [self._get(token_id) for token_id in self._minted_ids()]
        described = [self._describe(t, last_used.get(str(t.id))) for t in tokens if t is not None]
        return sorted(described, key=lambda t: (t["created_at"], t["id"]))

    # --- verification ------------------------------------------------------------------------

    def _parse(self, presented: str) -> tuple[UUID, str] | None:
        """(token id, keyed hash of the secret), or None for a malformed token."""
        if not presented or len(presented) > MAX_TOKEN_LENGTH or not presented.isascii():
            return None
        token_hex, _, secret = presented.partition(".")
        try:
            token_id = UUID(hex=token_hex)
        except ValueError:
            return None
        if not secret:
            return None
        return token_id, self._hash(secret)

    def already_verified(self, presented: str) -> Principal | None:
        """The principal if this process verified the token less than REVALIDATE_S ago and it
        has not expired since (no store access). None: ask verify()."""
        parsed = self._parse(presented)
        if parsed is None:
            return None
        with self._lock:
            known = self._verified.get(parsed[1])
        if known is None or self._monotonic() - known.checked_at_s >= REVALIDATE_S:
            return None
        if self._now() >= known.expires_at:
            return None
        return known.principal

    def verify(self, presented: str) -> Principal | None:
        """The principal of a presented token, read from the store; None for anything unknown,
        malformed, expired or revoked."""
        parsed = self._parse(presented)
        if parsed is None:
            return None
        token_id, secret_hash = parsed
        token = self._get(token_id)
        if token is None or not hmac.compare_digest(token.secret_hash, secret_hash):
            return None
        now = self._now()
        if not token.valid_at(now):
            with self._lock:
                self._verified.pop(secret_hash, None)
            return None
        principal = Principal(str(token.id), token.role, token.organization_code, token.pii)
        checked_at_s = self._monotonic()
        with self._lock:
            if len(self._verified) >= MAX_CACHED_TOKENS:
                self._verified.clear()
            self._verified[secret_hash] = _Verified(principal, token.expires_at, checked_at_s)
            written_s = self._last_used_written.get(principal.token_id)
            due = written_s is None or checked_at_s - written_s >= LAST_USED_EVERY_S
            if due:
                if len(self._last_used_written) >= MAX_CACHED_TOKENS:
                    self._last_used_written.clear()
                self._last_used_written[principal.token_id] = checked_at_s
        if due:
            self._record_use(principal.token_id, now)
        return principal

    def _record_use(self, token_id: str, at: datetime.datetime) -> None:
        # Only an operator's figure: a failure to write it must not turn a valid token away.
        try:
            self.usage.record(token_id, at)
        except Exception:
            log.warning("could not record the last use of token %s", token_id, exc_info=True)
