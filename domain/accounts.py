"""The chart of accounts (会计科目) of the 2021 union accounting system 《工会会计制度》."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import InvalidValue


class AccountKind(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    NET_ASSETS = "net_assets"
    INCOME = "income"
    EXPENDITURE = "expenditure"

    @property
    def debit_normal(self) -> bool:
        """Assets and expenditure grow with debits; the others with credits."""
        return self in (AccountKind.ASSET, AccountKind.EXPENDITURE)


@dataclass(frozen=True, slots=True)
class Account:
    code: str
    name: str
    kind: AccountKind
    parent: str | None = None


_ACCOUNTS = [
    Account("101", "库存现金", AccountKind.ASSET),
    Account("102", "银行存款", AccountKind.ASSET),
    Account("131", "应收上级经费", AccountKind.ASSET),
    Account("132", "应收下级经费", AccountKind.ASSET),
    Account("211", "应付上级经费", AccountKind.LIABILITY),
    Account("212", "应付下级经费", AccountKind.LIABILITY),
    Account("215", "其他应付款", AccountKind.LIABILITY),
    Account("321", "工会资金结转", AccountKind.NET_ASSETS),
    Account("322", "工会资金结余", AccountKind.NET_ASSETS),
    Account("401", "会费收入", AccountKind.INCOME),
    Account("402", "拨缴经费收入", AccountKind.INCOME),
    Account("403", "上级补助收入", AccountKind.INCOME),
    Account("40301", "上级补助收入-一般性补助", AccountKind.INCOME, "403"),
    Account("40302", "上级补助收入-专项补助", AccountKind.INCOME, "403"),
    Account("404", "政府补助收入", AccountKind.INCOME),
    Account("501", "职工活动支出", AccountKind.EXPENDITURE),
    Account("503", "职工服务支出", AccountKind.EXPENDITURE),
    Account("50302", "职工服务支出-职工之家建设", AccountKind.EXPENDITURE, "503"),
    Account("504", "维权支出", AccountKind.EXPENDITURE),
    Account("50404", "维权支出-困难职工帮扶", AccountKind.EXPENDITURE, "504"),
    Account("50405", "维权支出-送温暖", AccountKind.EXPENDITURE, "504"),
    Account("505", "业务支出", AccountKind.EXPENDITURE),
    Account("50503", "业务支出-专项业务", AccountKind.EXPENDITURE, "505"),
    Account("508", "补助下级支出", AccountKind.EXPENDITURE),
    Account("510", "其他支出", AccountKind.EXPENDITURE),
]

ACCOUNTS: dict[str, Account] = {a.code: a for a in _ACCOUNTS}

BANK = "102"
DUES_INCOME = "401"
LEVY_INCOME = "402"
PAYABLE_UP = "211"
PAYABLE_DOWN = "212"
OTHER_PAYABLE = "215"
SUBSIDY_GENERAL_INCOME = "40301"
SUBSIDY_EARMARKED_INCOME = "40302"
SUBSIDY_TO_LOWER = "508"
EARMARKED_FUNDS = "321"  # 工会资金结转
GENERAL_FUNDS = "322"  # 工会资金结余

# Accounts kept only by unions at county level and above (县级以上).
COUNTY_LEVEL_ACCOUNTS = frozenset({"132", "212", "404", "508"})

# Accounts whose balance towards each counterparty must never turn negative, and the bank.
NON_NEGATIVE_ACCOUNTS = frozenset({BANK, PAYABLE_UP, PAYABLE_DOWN, OTHER_PAYABLE})

# Where a payout to a person is booked, by programme (补助项目).
PROGRAMME_ACCOUNTS: dict[str, str] = {
    "hardship": "50404",  # 困难职工帮扶
    "school": "50405",  # 金秋助学, part of 送温暖
    "condolence": "50405",  # 慰问, part of 送温暖
    "model_worker": "50503",  # 劳模补助, a special operations item
    "childcare": "503",  # 托育, a member service
    "general": "510",  # 其他支出
}


def account(code: str) -> Account:
    try:
        return ACCOUNTS[code]
    except KeyError:
        raise InvalidValue("account_code", f"{code!r} is not an account of the ledger") from None


def subaccounts(code: str) -> list[Account]:
    return [a for a in _ACCOUNTS if a.parent == code]


def expense_account(code: str) -> Account:
    """An account a plain expense (支出) may be booked to: any expenditure account but 508.

    A parent such as 503 may take postings of its own (childcare has no subaccount), so a
    parent's statement line is its own postings plus those of its subaccounts.
    """
    acct = account(code)
    if acct.kind is not AccountKind.EXPENDITURE:
        raise InvalidValue("account_code", f"{code} {acct.name} is not an expenditure account")
    if code == SUBSIDY_TO_LOWER:
        raise InvalidValue("account_code", "508 is booked by a subsidy to a lower union")
    return acct
