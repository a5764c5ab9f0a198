"""A small, valid deployment for service tests: a province root and the unions below it.

Codes and identity numbers come from scripts/synthetic.py, so they pass every check the
domain makes (credit-code check character, identity-number checksum, known division codes).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from domain.errors import DomainError
from scripts.synthetic import employer_code, id_number, union_code
from service.application import Ledger
from service.commands import AdoptLevyPolicy, FoundOrganization, JoinMember

# The worked example's policy from docs/domain.md (percentages per level).
EXAMPLE_SHARES = {
    "base": "60",
    "township": "5",
    "county": "15",
    "city": "10",
    "province": "5",
    "national": "5",
}
PROVINCE_REGION, CITY_REGION, COUNTY_REGION = "440000", "440100", "440106"
FOUNDED_ON = "2000-01-01"


@dataclass(frozen=True)
class Tree:
    """省总工会 > 市总工会 > 县级总工会 > (基层工会 A, B; 街道工会 > 基层工会 C)."""

    province: str
    city: str
    county: str
    township: str
    base_a: str
    base_b: str
    base_c: str  # under the township
    employer_a: str
    employer_b: str
    employer_c: str


def org_code(serial: int, *, base: bool, region: str = COUNTY_REGION) -> str:
    return union_code(region, serial, base=base)


def employer(serial: int) -> str:
    return employer_code(COUNTY_REGION, serial)


def base_union(
    serial: int, parent_code: str, founded_on: str, *, name: str = "新建工会", employees: int = 10
) -> FoundOrganization:
    """The founding of base union `serial` of the county's region, for employer `serial`."""
    return FoundOrganization(
        code=org_code(serial, base=True),
        name=name,
        level="base",
        parent_code=parent_code,
        region_code=COUNTY_REGION,
        founded_on=founded_on,
        employer_code=employer(serial),
        employee_count=employees,
    )


def person(n: int) -> str:
    """The n-th synthetic resident identity number: distinct for distinct n < 10_000."""
    birth = datetime.date(1970, 1, 1) + datetime.timedelta(days=7 * n)
    return id_number(COUNTY_REGION, birth, n)


def join_members(ledger: Ledger, org: str, numbers: range, *, mobile: bool = False) -> None:
    """Person n (person(n)) for each n in numbers joins org on 2025-03-01, with a mobile
    number if asked."""
    for n in numbers:
        ledger.execute(
            JoinMember(
                id_number=person(n),
                name=f"会员{n}",
                organization_code=org,
                joined_on="2025-03-01",
                mobile=f"1380000{n:04d}" if mobile else None,
            )
        )


def found_tree(ledger: Ledger, *, policy: bool = True) -> Tree:
    """Founds the tree and (by default) adopts the worked example's levy policy for region 44."""
    tree = Tree(
        province=org_code(1, base=False, region=PROVINCE_REGION),
        city=org_code(2, base=False, region=CITY_REGION),
        county=org_code(3, base=False),
        township=org_code(4, base=False),
        base_a=org_code(5, base=True),
        base_b=org_code(6, base=True),
        base_c=org_code(7, base=True),
        employer_a=employer(5),
        employer_b=employer(6),
        employer_c=employer(7),
    )
    ledger.execute(
        FoundOrganization(
            code=tree.province,
            name="广东省总工会",
            level="province",
            parent_code=None,
            region_code=PROVINCE_REGION,
            founded_on=FOUNDED_ON,
        )
    )
    ledger.execute(
        FoundOrganization(
            code=tree.city,
            name="广州市总工会",
            level="city",
            parent_code=tree.province,
            region_code=CITY_REGION,
            founded_on=FOUNDED_ON,
        )
    )
    ledger.execute(
        FoundOrganization(
            code=tree.county,
            name="天河区总工会",
            level="county",
            parent_code=tree.city,
            region_code=COUNTY_REGION,
            founded_on=FOUNDED_ON,
        )
    )
    ledger.execute(
        FoundOrganization(
            code=tree.township,
            name="石牌街道总工会",
            level="township",
            parent_code=tree.county,
            region_code=COUNTY_REGION,
            founded_on=FOUNDED_ON,
        )
    )
    for code, emp, parent, name in (
        (tree.base_a, tree.employer_a, tree.county, "甲公司工会"),
        (tree.base_b, tree.employer_b, tree.county, "乙公司工会"),
        (tree.base_c, tree.employer_c, tree.township, "丙公司工会"),
    ):
        ledger.execute(
            FoundOrganization(
                code=code,
                name=name,
                level="base",
                parent_code=parent,
                region_code=COUNTY_REGION,
                founded_on=FOUNDED_ON,
                employer_code=emp,
                employee_count=120,
            )
        )
    if policy:
        ledger.execute(
            AdoptLevyPolicy(region_code="44", effective_from=FOUNDED_ON, shares=EXAMPLE_SHARES)
        )
    return tree


def balances(ledger: Ledger, organization_code: str) -> dict[str, str]:
    """Non-zero balances of one book as signed decimal strings (debit positive)."""
    book = ledger.get_book(organization_code)
    if book is None:
        return {}
    return {account: _yuan(fen) for account, fen in sorted(book.balances.items()) if fen != 0}


def owed(ledger: Ledger, organization_code: str, account_code: str) -> dict[str, str]:
    """What a union owes on 211/212/215, by counterparty, as decimal strings."""
    book = ledger.get_book(organization_code)
    if book is None:
        return {}
    return {c: str(m) for c, m in sorted(book.owed(account_code).items())}


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def lines(body: dict) -> list[tuple[str, str, str, str, str | None]]:
    """A voucher view's postings as sortable (org, account, debit, credit, counterparty)."""
    return sorted(
        (p["organization_code"], p["account_code"], p["debit"], p["credit"], p["counterparty"])
        for p in body["postings"]
    )


def refused(ledger: Ledger, error: type[DomainError], command, *args, **kwargs) -> DomainError:
    """Runs a command that must fail with exactly this named error and store nothing."""
    before = ledger.head_position()
    try:
        command(*args, **kwargs)
    except DomainError as exc:
        assert type(exc) is error, f"expected {error.__name__}, got {type(exc).__name__}: {exc}"
        assert ledger.head_position() == before, "a refused command stored events"
        return exc
    raise AssertionError(f"expected {error.__name__}, but the command succeeded")
