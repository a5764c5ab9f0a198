"""In-memory aggregates for the domain tests: real constructors, synthetic identifiers."""

from __future__ import annotations

import datetime
import itertools
import uuid

from domain.identity import CreditCode, IdNumber
from domain.members import Member
from domain.organizations import Organization
from scripts.synthetic import employer_code, id_number, union_code

# Beijing: 北京市 (province level), 朝阳区 (county level). A city level sits in between here
# because the tree's levels, not the real administrative map, are what the rules look at.
PROVINCE_REGION = "110000"
CITY_REGION = "110100"
COUNTY_REGION = "110105"
TOWNSHIP_REGION = "110105"
BASE_REGION = "110105"

FOUNDED_ON = datetime.date(2000, 1, 1)
_serials = itertools.count(1)


def new_code(region_code: str, *, base: bool) -> CreditCode:
    return CreditCode.parse(union_code(region_code, next(_serials), base=base))


def found(
    level: str,
    parent: Organization | None,
    *,
    region_code: str | None = None,
    founded_on: datetime.date = FOUNDED_ON,
    employee_count: int | None = None,
) -> Organization:
    """A valid organisation of the given level under parent (None: a deployment's root)."""
    base = level in ("base", "joint_base")
    region = region_code or {
        "national": "110000",
        "province": PROVINCE_REGION,
        "city": CITY_REGION,
        "county": COUNTY_REGION,
        "township": TOWNSHIP_REGION,
    }.get(level, BASE_REGION)
    return Organization.found(
        code=new_code(region, base=base),
        name=f"{level} union {next(_serials)}",
        level=level,
        parent=parent,
        region_code=region,
        founded_on=founded_on,
        employer_code=(
            CreditCode.parse(employer_code(region, next(_serials))) if level == "base" else None
        ),
        employee_count=(employee_count if employee_count is not None else 120) if base else None,
    )


def small_tree() -> dict[str, Organization]:
    """province > city > county > two base unions (b1, b2), and a joint base union (jb)."""
    province = found("province", None)
    city = found("city", province)
    county = found("county", city)
    return {
        "province": province,
        "city": city,
        "county": county,
        "b1": found("base", county),
        "b2": found("base", county),
        "jb": found("joint_base", county),
    }


def person(
    birth_date: datetime.date = datetime.date(1985, 6, 15), sequence: int | None = None
) -> IdNumber:
    seq = next(_serials) % 1000 if sequence is None else sequence
    return IdNumber.parse(id_number("110105", birth_date, seq))


def join(
    organization: Organization,
    *,
    identity: IdNumber | None = None,
    joined_on: datetime.date = datetime.date(2020, 3, 1),
) -> Member:
    return Member.join(
        member_id=uuid.uuid4(),
        id_number=identity or person(),
        name="张三",
        mobile="13812345678",
        migrant_worker=False,
        new_employment_form=True,
        organization=organization,
        joined_on=joined_on,
    )


def replay(aggregate):
    """Rebuilds an aggregate from its (not yet collected) pending events, as a store would."""
    rebuilt = None
    for event in aggregate.collect_events():
        rebuilt = event.mutate(rebuilt)
    return rebuilt
