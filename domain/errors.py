"""Named domain failures. The HTTP layer maps each family to one status code, in one place.

- InvalidValue: a field's value is wrong whatever the state (HTTP 422).
- ContentTooLarge: a value (an uploaded file) is larger, once read, than the ledger processes
  (HTTP 413).
- NotFound: a named thing does not exist (HTTP 404).
- RuleViolation subclasses: the request is valid, but the current state forbids it (HTTP 409).
- LimitReached subclasses: the caller has asked too often; it may ask again later (HTTP 429).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every failure the domain names."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(DomainError):
    """A field's value is malformed or out of range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class ContentTooLarge(InvalidValue):
    """A file that would expand, once read, past a limit: an archive member, a line, a row, the
    time it takes. The message names what and the limit."""


class NotFound(DomainError):
    """The organisation, member, transfer, voucher or policy named does not exist."""


class RuleViolation(DomainError):
    """The request is well formed but the ledger's current state forbids it."""


class AlreadyMember(RuleViolation):
    """会员已在册: one person holds at most one membership in the whole deployment.

    The message does not name the union that holds the membership: who belongs to which union
    is personal, and only a caller whose scope covers organization_code may be told it."""

    def __init__(self, message: str, *, organization_code: str, status: str) -> None:
        super().__init__(message)
        self.organization_code = organization_code
        self.status = status


class NotAMember(RuleViolation):
    """The person holds no membership that the command could act on."""


class TransferPending(RuleViolation):
    """A transfer (转出) is pending; it must be accepted or cancelled first."""


class InvalidStatus(RuleViolation):
    """The member or organisation is in a status that does not allow this change."""


class OrganizationNotActive(RuleViolation):
    """The organisation is dissolved (已撤销) and cannot take part."""


class OrganizationInUse(RuleViolation):
    """Dissolution is refused while the organisation has members or active children."""


class TreeViolation(RuleViolation):
    """The organisation tree would become invalid (a cycle, a second root, a level inversion)."""


class AlreadyExists(RuleViolation):
    """The thing to create exists already (an organisation code, a policy, a month close)."""


class PeriodClosed(RuleViolation):
    """月结: the month is closed and takes no new postings dated inside it."""


class PeriodOutOfOrder(RuleViolation):
    """Months close in order and only after they end; only the last closed month reopens."""


class BeforeFounding(RuleViolation):
    """A posting dated before the organisation was founded (建会时间)."""


class AccountNotAtThisLevel(RuleViolation):
    """An account kept only at county level and above (132, 212, 404, 508) below it."""


class InsufficientFunds(RuleViolation):
    """The payout would take the organisation's bank account (102) below zero."""


class RemittanceExceedsOwed(RuleViolation):
    """The remittance is larger than what the payer owes the receiver (211 or 212)."""


class NoLevyPolicy(RuleViolation):
    """No levy-sharing policy applies to the region and period."""


class AlreadyReversed(RuleViolation):
    """红字冲销: a voucher is reversed at most once, and a reversal is never reversed."""


class UnbalancedVoucher(DomainError):
    """A voucher's debits differ from its credits. This is a defect, never a client error."""


class VersionConflict(RuleViolation):
    """Concurrent writers kept colliding; retrying did not resolve it."""


class LimitReached(DomainError):
    """The caller has used up what it may do in a window of time; retry_after_s says when the
    window ends (HTTP 429 with Retry-After)."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, int(retry_after_s))


class SearchLimitReached(LimitReached):
    """A token searched for members more often than its per-minute allowance."""


class IdempotencyKeyReused(DomainError):
    """The idempotency key was used before with a different request (HTTP 422)."""
