"""Every aggregate the ledger stores. Importing this module registers every stored topic, so
that whoever decodes events (the write side, a projection, the audit stream, a command-line
tool) can read all of them: the event mapper imports it (storage/payload_binding.py)."""

from __future__ import annotations

from domain.access import PiiRead, SearchWindow, Token
from domain.idempotency import IdempotencyRecord
from domain.members import Member
from domain.organizations import Deployment, Organization
from domain.policies import LevyPolicies
from domain.reconciliation_runs import ReconciliationRegister, ReconciliationRun
from domain.registers import HardshipFile, ModelWorker
from domain.reserves import FoundingReserve
from domain.vouchers import Book, Voucher

AGGREGATES = (
    Deployment,
    Organization,
    Member,
    Voucher,
    Book,
    LevyPolicies,
    FoundingReserve,
    Token,
    SearchWindow,
    PiiRead,
    IdempotencyRecord,
    ReconciliationRun,
    ReconciliationRegister,
    HardshipFile,
    ModelWorker,
)
