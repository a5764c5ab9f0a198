"""The demo plan: deterministic, realistic in size, and valid by the domain's own parsers."""

from __future__ import annotations

from collections import Counter

import pytest

from domain.identity import CreditCode, IdNumber, parse_mobile, parse_region_code
from domain.organizations import parse_name
from scripts.demo_data import DEMO_YEAR, build_plan
from scripts.demo_names import counties_of, divisions


@pytest.fixture(scope="module")
def county():
    return build_plan("county", 1.0, 1)


def test_the_same_seed_gives_the_same_plan() -> None:
    first, second = build_plan("county", 0.01, 9), build_plan("county", 0.01, 9)
    assert first.organizations == second.organizations
    assert first.people == second.people
    assert first.stories == second.stories
    other = build_plan("county", 0.01, 10)
    assert [p.id_number for p in other.people] != [p.id_number for p in first.people]


def test_a_county_has_the_size_the_domain_describes(county) -> None:
    organizations = len(county.organizations) + len(county.in_year_organizations)
    assert 700 <= organizations <= 2500
    assert 80_000 <= county.member_count <= 200_000
    levels = Counter(o.level for o in county.organizations)
    assert levels["county"] == 1 and levels["township"] == 12
    assert levels["joint_base"] >= 10
    root = county.organizations[0]
    assert (root.name, root.region_code, root.parent_code) == ("杭州市西湖区总工会", "330106", None)


def test_people_are_valid_distinct_and_varied(county) -> None:
    people = county.people
    assert len({p.id_number for p in people}) == len(people)
    founded = {o.code: o.founded_on for o in county.organizations}
    founded.update({c: o.founded_on for c, o in county.in_year_organizations.items()})
    for person in people[::97]:
        identity = IdNumber.parse(person.id_number)
        age_at_joining = (person.joined_on - identity.birth_date).days / 365.25
        assert 16 <= age_at_joining < 70
        assert person.joined_on >= founded[person.organization_code]
        assert parse_name(person.name) == person.name
        assert person.mobile is None or parse_mobile(person.mobile) == person.mobile
        assert isinstance(person.wage_fen, int) and person.wage_fen >= 2_490_00
    women = sum(IdNumber(p.id_number).sex == "female" for p in people)
    assert 0.3 < women / len(people) < 0.6
    migrants = sum(p.migrant_worker for p in people)
    assert 0.1 < migrants / len(people) < 0.4
    assert sum(p.new_employment_form for p in people) > 500
    assert sum(p.mobile is not None for p in people) > len(people) // 2
    outside = sum(not p.id_number.startswith("33") for p in people)
    assert outside > 0.1 * len(people)


def test_organizations_have_valid_codes_and_a_consistent_tree(county) -> None:
    codes = set()
    for org in [*county.organizations, *county.in_year_organizations.values()]:
        code = CreditCode.parse(org.code)
        assert code.is_union and code.division_code == org.region_code
        assert code.value[1] == ("1" if org.is_base else "9")
        assert org.code not in codes
        codes.add(org.code)
        assert org.parent_code is None or org.parent_code in codes
        if org.level == "base":
            assert CreditCode.parse(org.employer_code).value.startswith("91")
        if org.is_base:
            assert org.employee_count >= 1
            assert all(e.payroll_fen > 0 for e in org.employers)
    assert len({o.name for o in county.organizations}) == len(county.organizations)


def test_stories_fall_in_the_year_and_cover_every_kind(county) -> None:
    kinds = Counter(s.kind for s in county.stories)
    for kind in (
        "join",
        "transfer_start",
        "transfer_accept",
        "transfer_cancel",
        "retain",
        "reinstate",
        "exit",
        "rejoin",
        "correct",
    ):
        assert kinds[kind] >= 1, kind
    assert all(s.on.year == DEMO_YEAR for s in county.stories)
    assert [s.on for s in county.stories] == sorted(s.on for s in county.stories)
    assert {c.kind for c in county.org_changes} == {"found", "rename", "move"}


@pytest.mark.parametrize("size", ["city", "province"])
def test_larger_sizes_are_built_from_real_divisions(size: str) -> None:
    plan = build_plan(size, 0.002, 3)
    counties = [o for o in plan.organizations if o.level == "county"]
    expected = counties_of("3301") if size == "city" else counties_of("33")
    assert len(counties) == len(expected)
    for org in counties:
        assert parse_region_code(org.region_code) == org.region_code
        assert divisions()[org.region_code] in org.name


def test_current_divisions_exclude_abolished_ones() -> None:
    assert divisions()["330106"] == "西湖区"
    assert "522422" not in divisions()  # 大方县, abolished in 2011
