"""API tokens (访问令牌): a role, an organisation scope and a personal-data flag, stored hashed.

A token is `<token id>.<secret>`. Only a keyed hash of the secret is stored, in a Token
aggregate in the same event store as everything else (so it is encrypted at rest by the same
cipher, and shared by every server process on the database). The id part lets a presented
token be found with one lookup; the hash comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import event

from domain.base import LedgerAggregate, acting_as, stable_topic
from domain.errors import InvalidValue, NotFound
from service.application import Ledger
from service.storage import derive_key, load_or_create_key

ROLES = ("clerk", "auditor", "admin")
SECRET_BYTES = 32
MAX_TOKEN_LENGTH = 200
# Tokens never change once minted, so a verified one can be remembered; bounded like everything.
MAX_CACHED_TOKENS = 10_000


@stable_topic("ledger:Token")
class Token(LedgerAggregate):
    """访问令牌: who may call the API, as what, over which organisations."""

    @event("Minted", topic="ledger:Token.Minted")
    def __init__(
        self,
        id: UUID,
        role: str,
        organization_code: str | None,
        pii: bool,
        secret_hash: str,
    ) -> None:
        self.role = role
        self.organization_code = organization_code
        self.pii = pii
        self.secret_hash = secret_hash


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


class Tokens:
    """Mints tokens and verifies presented ones against the event store."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._key = derive_key(load_or_create_key(ledger.settings), "api-token")
        self._verified: dict[str, Principal] = {}
        self._lock = threading.Lock()

    def _hash(self, secret: str) -> str:
        return hmac.new(self._key, secret.encode("ascii"), hashlib.sha256).hexdigest()

    def mint(
        self, *, role: str, organization_code: str | None = None, pii: bool = False,
        actor: str = "cli:token create",
    ) -> tuple[Principal, str]:
        """Stores a new token and returns it with its one-time plaintext form."""
        if role not in ROLES:
            raise InvalidValue("role", f"role is one of {', '.join(ROLES)}")
        if organization_code is not None:
            try:
                organization_code = self.ledger.get_organization(organization_code)["code"]
            except NotFound:
                raise InvalidValue(
                    "organization", f"no organisation has code {organization_code[:40]!r}"
                ) from None
        token_id = uuid4()
        secret = secrets.token_urlsafe(SECRET_BYTES)
        with acting_as(actor):
            token = Token(
                id=token_id, role=role, organization_code=organization_code, pii=bool(pii),
                secret_hash=self._hash(secret),
            )
            self.ledger.save(token)
        principal = Principal(str(token_id), role, organization_code, bool(pii))
        return principal, f"{token_id.hex}.{secret}"

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
        """The principal if this process has verified the token before (no store access)."""
        parsed = self._parse(presented)
        if parsed is None:
            return None
        with self._lock:
            return self._verified.get(parsed[1])

    def verify(self, presented: str) -> Principal | None:
        """The principal of a presented token, or None for anything unknown or malformed."""
        parsed = self._parse(presented)
        if parsed is None:
            return None
        token_id, secret_hash = parsed
        with self._lock:
            known = self._verified.get(secret_hash)
        if known is not None:
            return known
        try:
            token = self.ledger.repository.get(token_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(token, Token) or not hmac.compare_digest(token.secret_hash, secret_hash):
            return None
        principal = Principal(str(token.id), token.role, token.organization_code, token.pii)
        with self._lock:
            if len(self._verified) >= MAX_CACHED_TOKENS:
                self._verified.clear()
            self._verified[secret_hash] = principal
        return principal
