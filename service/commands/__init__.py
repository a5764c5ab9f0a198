"""Every write to the ledger is one of these commands, handed to Ledger.execute()."""

from service.commands.access import (
    MintToken,
    RecordOutcome,
    RecordPiiRead,
    RecordSearch,
    RevokeToken,
)
from service.commands.base import Command
from service.commands.funds import (
    AdoptLevyPolicy,
    ClosePeriod,
    PaySubsidy,
    RecordDues,
    RecordExpense,
    RecordLevy,
    RecordRemittance,
    ReopenPeriod,
    ReverseVoucher,
)
from service.commands.members import (
    AcceptTransfer,
    CancelTransfer,
    CorrectMember,
    ExitMember,
    JoinMember,
    JoinMembers,
    ReinstateMember,
    RetainMember,
    StartTransfer,
)
from service.commands.organizations import (
    ChangeOrganization,
    DissolveOrganization,
    FoundOrganization,
)
from service.commands.reconciliations import RecordReconciliation, SignOffReconciliation
from service.commands.registers import (
    CloseHardshipFile,
    OpenHardshipFile,
    RegisterModelWorker,
    ReviewHardshipFile,
    RevokeModelWorker,
)

__all__ = [
    "AcceptTransfer",
    "AdoptLevyPolicy",
    "CancelTransfer",
    "ChangeOrganization",
    "CloseHardshipFile",
    "ClosePeriod",
    "Command",
    "CorrectMember",
    "DissolveOrganization",
    "ExitMember",
    "FoundOrganization",
    "JoinMember",
    "JoinMembers",
    "MintToken",
    "OpenHardshipFile",
    "PaySubsidy",
    "RecordDues",
    "RecordExpense",
    "RecordLevy",
    "RecordOutcome",
    "RecordPiiRead",
    "RecordReconciliation",
    "RecordRemittance",
    "RecordSearch",
    "RegisterModelWorker",
    "ReinstateMember",
    "ReopenPeriod",
    "RetainMember",
    "ReverseVoucher",
    "ReviewHardshipFile",
    "RevokeModelWorker",
    "RevokeToken",
    "SignOffReconciliation",
    "StartTransfer",
]
