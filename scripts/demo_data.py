"""The synthetic deployment `ledger demo` loads: a plan made from a seed, with no I/O.

The plan holds the organisation tree, the people with their wages, and a year of membership
stories (transfers, retentions, exits, rejoins). The loader (scripts/demo_loader.py) turns it
into commands month by month. The same size, scale and seed always give the same plan.
"""

from __future__ import annotations

import datetime
import math
import random
from dataclasses import dataclass, field

from scripts import synthetic
from scripts.demo_names import (
    GIVEN_FEMALE,
    GIVEN_MALE,
    INDUSTRIES,
    JOINT_UNION_KINDS,
    MIGRANT_PROVINCES,
    PLATFORM_INDUSTRIES,
    TOWNSHIP_KINDS,
    TOWNSHIP_STEMS,
    TRADE_WORDS,
    XIHU_TOWNSHIPS,
    cities_of,
    counties_of,
    divisions,
    weighted_surnames,
)

DEMO_YEAR = 2025
LEVY_POLICIES: list[dict] = [
    # 浙江: 60% kept by the base union, 40% up the tree (national 5%).
    {
        "region_code": "33",
        "effective_from": "2021-01-01",
        "shares": {
            "base": "60",
            "township": "5",
            "county": "14",
            "city": "8",
            "province": "8",
            "national": "5",
        },
    },
    # 杭州 from July of the demo year: township unions keep more, the city less.
    {
        "region_code": "3301",
        "effective_from": "2025-07-01",
        "shares": {
            "base": "60",
            "township": "7.5",
            "county": "13.5",
            "city": "6",
            "province": "8",
            "national": "5",
        },
    },
]
SIZES = ("county", "city", "province")
# Per county at scale 1: about 1,000 base unions and 105,000 members (domain.md: a county has
# 700-2,500 organisations and 80,000-200,000 members; about 107 members per base union).
BASES_PER_COUNTY = 1000
MEMBERS_PER_BASE = 105
DIRECT_BASE_SHARE = 0.15  # large employers' unions sit directly under the county federation
JOINT_BASE_SHARE = 0.05  # 联合基层工会 of small employers
MIN_BASES_PER_COUNTY = 4
MIN_MEMBERS_PER_COUNTY = 40
MIN_WAGE_FEN = 2_490_00  # 杭州 monthly minimum wage, 2024
IN_YEAR_JOIN_SHARE = 0.06
# The registers behind the subsidies (困难职工档案, 劳模名册): a few percent of members on file,
# most of them 相对困难, a handful 深度困难; model workers at every level, more county than
# national. Weights are relative.
HARDSHIP_SHARE = 0.02
HARDSHIP_CATEGORIES = {"relative": 75, "sudden": 18, "deep": 7}
HARDSHIP_CAUSES = {
    "illness": 35,
    "unemployment": 22,
    "education": 20,
    "disability": 9,
    "accident": 9,
    "other": 5,
}
HARDSHIP_CLOSE_REASONS = (
    "再就业，家庭收入稳定",
    "子女毕业就业，脱困",
    "医疗费用报销到位，脱困",
    "纳入低保后收入达标",
)
MODEL_WORKER_SHARE = 0.004
MODEL_WORKER_LEVELS = {"county": 55, "city": 28, "provincial": 13, "national": 4}
MODEL_WORKER_HONOURS = {
    "county": ("县级劳动模范", "县五一劳动奖章"),
    "city": ("市级劳动模范", "市五一劳动奖章"),
    "provincial": ("省部级劳动模范", "省五一劳动奖章"),
    "national": ("全国劳动模范", "全国五一劳动奖章"),
}
FOUNDING_RESERVE_EMPLOYERS = 2  # per county: levy held (建会筹备金) until the union is founded


@dataclass(slots=True)
class Employer:
    code: str
    name: str
    payroll_fen: int  # monthly payroll (工资总额)


@dataclass(slots=True)
class OrgPlan:
    code: str
    name: str
    level: str
    parent_code: str | None
    region_code: str
    founded_on: datetime.date
    employer_code: str | None = None
    employee_count: int | None = None
    # Base unions: how their levy arrives, who pays it, whether dues come with a member list.
    channel: str = "employer"
    employers: list[Employer] = field(default_factory=list)
    dues_with_members: bool = False
    average_wage_fen: int = 0
    platform: bool = False

    @property
    def is_base(self) -> bool:
        return self.level in ("base", "joint_base")


@dataclass(slots=True)
class Person:
    id_number: str
    name: str
    mobile: str | None
    migrant_worker: bool
    new_employment_form: bool
    organization_code: str
    joined_on: datetime.date
    wage_fen: int


@dataclass(slots=True)
class Story:
    """One membership change on a date: join, transfer_start, transfer_accept,
    transfer_cancel, retain, reinstate, exit, rejoin, correct."""

    on: datetime.date
    kind: str
    person: int
    organization_code: str | None = None
    code: int | None = None  # reason_code, or change_code for an exit
    reason: int | None = None


@dataclass(slots=True)
class OrgChange:
    """A union founded during the year, renamed, or moved under another parent."""

    on: datetime.date
    kind: str  # found, rename, move
    organization_code: str
    value: str | None = None


@dataclass(slots=True)
class DemoPlan:
    size: str
    scale: float
    seed: int
    root_code: str
    organizations: list[OrgPlan]  # founded before the year, parents first
    people: list[Person]
    pre_year_members: list[int]  # indices into people, joined before the year
    stories: list[Story]
    org_changes: list[OrgChange]
    in_year_organizations: dict[str, OrgPlan]  # founded during the year, by code
    reserve_employers: list[tuple[Employer, str]]  # employer, the county union holding its levy
    policies: list[dict]
    counties: list[str] = field(default_factory=list)

    @property
    def member_count(self) -> int:
        return len(self.people)


def _date_between(rng: random.Random, first: datetime.date, last: datetime.date) -> datetime.date:
    if last <= first:
        return first
    return first + datetime.timedelta(days=rng.randrange((last - first).days + 1))


def _day_in(
    rng: random.Random, month: int, first_day: int = 1, last_day: int = 28
) -> datetime.date:
    return datetime.date(DEMO_YEAR, month, rng.randint(first_day, last_day))


class _Builder:
    def __init__(self, size: str, scale: float, seed: int) -> None:
        if size not in SIZES:
            raise ValueError(f"size is one of {', '.join(SIZES)}")
        if not 0 < scale <= 1:
            raise ValueError("scale is a fraction above 0 and at most 1")
        self.size, self.scale, self.seed = size, scale, seed
        self.rng = random.Random(f"union-ledger-demo:{size}:{seed}")
        self.orgs: list[OrgPlan] = []
        self.people: list[Person] = []
        self.union_serials: dict[str, int] = {}
        self.employer_serial = 0
        self.id_numbers: set[str] = set()
        self.names_used: set[str] = set()
        self.surnames, self.surname_weights = weighted_surnames()
        self.local_counties = [code for code, _ in counties_of("33")]
        self.migrant_counties = [c for p in MIGRANT_PROVINCES for c, _ in counties_of(p)]
        self.reserve_employers: list[tuple[Employer, str]] = []
        self.org_changes: list[OrgChange] = []
        self.in_year_bases: list[tuple[OrgPlan, datetime.date]] = []

    # --- codes and names -------------------------------------------------------------------

    def union_code(self, region: str, *, base: bool) -> str:
        serial = self.union_serials.get(region, 0) + 1
        self.union_serials[region] = serial
        # Spread serials over the code space, as real registrations are not consecutive.
        return synthetic.union_code(region, serial * 7919 + (1 if base else 0), base=base)

    def employer(self, region: str, name: str, payroll_fen: int) -> Employer:
        self.employer_serial += 1
        code = synthetic.employer_code(region, 10_000_000 + self.employer_serial * 104_729)
        return Employer(code, name, payroll_fen)

    def unique(self, make) -> str:
        for _ in range(1000):
            name = make()
            if name not in self.names_used:
                self.names_used.add(name)
                return name
        raise RuntimeError("ran out of distinct synthetic names")

    def company_name(self, city: str, platform: bool) -> str:
        rng = self.rng
        line, form = rng.choice(PLATFORM_INDUSTRIES if platform else INDUSTRIES)
        place = city.removesuffix("市")
        return self.unique(
            lambda: f"{place}{rng.choice(TRADE_WORDS)}{rng.choice(TRADE_WORDS)}{line}{form}"
        )

    def person_name(self, male: bool) -> str:
        surname = self.rng.choices(self.surnames, self.surname_weights)[0]
        return surname + self.rng.choice(GIVEN_MALE if male else GIVEN_FEMALE)

    # --- the tree ----------------------------------------------------------------------------

    def add(self, org: OrgPlan) -> OrgPlan:
        self.orgs.append(org)
        return org

    def build_tree(self) -> list[str]:
        """Founds the root and the levels down to the counties; returns the county codes."""
        names = divisions()
        if self.size == "county":
            root = self.add(
                OrgPlan(
                    self.union_code("330106", base=False),
                    "杭州市西湖区总工会",
                    "county",
                    None,
                    "330106",
                    datetime.date(1984, 3, 8),
                )
            )
            self.county_tree(root, "杭州市", "西湖区")
            return [root.code]
        if self.size == "city":
            root = self.add(
                OrgPlan(
                    self.union_code("330100", base=False),
                    "杭州市总工会",
                    "city",
                    None,
                    "330100",
                    datetime.date(1950, 5, 1),
                )
            )
            cities = [(root, "330100")]
        else:
            root = self.add(
                OrgPlan(
                    self.union_code("330000", base=False),
                    "浙江省总工会",
                    "province",
                    None,
                    "330000",
                    datetime.date(1950, 5, 1),
                )
            )
            cities = []
            for code, name in cities_of("33"):
                org = self.add(
                    OrgPlan(
                        self.union_code(code, base=False),
                        f"{name}总工会",
                        "city",
                        root.code,
                        code,
                        datetime.date(1952, 5, 1),
                    )
                )
                cities.append((org, code))
        counties = []
        for city, city_region in cities:
            for code, name in counties_of(city_region[:4]):
                founded = _date_between(
                    self.rng, datetime.date(1978, 1, 1), datetime.date(1995, 12, 31)
                )
                county = self.add(
                    OrgPlan(
                        self.union_code(code, base=False),
                        f"{names[city_region]}{name}总工会",
                        "county",
                        city.code,
                        code,
                        founded,
                    )
                )
                self.county_tree(county, names[city_region], name)
                counties.append(county.code)
        return counties

    def county_tree(self, county: OrgPlan, city: str, county_name: str) -> None:
        rng, region = self.rng, county.region_code
        if region == "330106":
            township_names = list(XIHU_TOWNSHIPS)
        else:
            stems = rng.sample(TOWNSHIP_STEMS, rng.randint(8, 14))
            township_names = [stem + rng.choice(TOWNSHIP_KINDS) for stem in stems]
        if self.scale < 1 and region != "330106":
            township_names = township_names[: max(2, round(len(township_names) * self.scale))]
        townships = [
            self.add(
                OrgPlan(
                    self.union_code(region, base=False),
                    f"{county_name}{name}总工会",
                    "township",
                    county.code,
                    region,
                    _date_between(
                        rng,
                        max(county.founded_on, datetime.date(1990, 1, 1)),
                        datetime.date(2005, 12, 31),
                    ),
                )
            )
            for name in township_names
        ]
        bases = max(MIN_BASES_PER_COUNTY, round(BASES_PER_COUNTY * self.scale))
        # One joint union of platform workers (新就业形态) directly under the county.
        self.add_base(
            county,
            city,
            joint=True,
            platform=True,
            name=f"{county_name}新就业形态劳动者联合工会委员会",
        )
        joint_left = max(1, round(bases * JOINT_BASE_SHARE))
        for i in range(bases - 1):
            direct = i % round(1 / DIRECT_BASE_SHARE) == 0
            parent = county if direct else rng.choice(townships)
            joint = not direct and joint_left > 0 and i % round(1 / JOINT_BASE_SHARE) == 1
            if joint:
                joint_left -= 1
                self.add_base(
                    parent,
                    city,
                    joint=True,
                    platform=False,
                    name=self.unique(
                        lambda p=parent: (
                            p.name.removesuffix("总工会")
                            + rng.choice(JOINT_UNION_KINDS)
                            + "联合工会委员会"
                        )
                    ),
                )
            else:
                self.add_base(parent, city, joint=False, platform=rng.random() < 0.04)
        for _ in range(FOUNDING_RESERVE_EMPLOYERS):
            township = rng.choice(townships)
            wage = rng.randrange(6_000_00, 11_000_00, 100_00)
            staff = max(4, round(rng.randint(40, 160) * self.scale**0.5))
            employer = self.employer(region, self.company_name(city, False), staff * wage)
            self.reserve_employers.append((employer, county.code))
            union = OrgPlan(
                self.union_code(region, base=True),
                f"{employer.name}工会委员会",
                "base",
                township.code,
                region,
                datetime.date(DEMO_YEAR, 6, 18),
                employer.code,
                staff,
                channel="employer",
                employers=[employer],
                average_wage_fen=wage,
            )
            self.in_year_bases.append((union, union.founded_on))
            self.org_changes.append(OrgChange(union.founded_on, "found", union.code))

    def add_base(
        self, parent: OrgPlan, city: str, *, joint: bool, platform: bool, name: str | None = None
    ) -> OrgPlan:
        rng, region = self.rng, parent.region_code
        wage = rng.randrange(5_500_00, 16_000_00, 100_00)
        if platform:
            wage = rng.randrange(6_000_00, 9_500_00, 100_00)
        founded = _date_between(
            rng, max(parent.founded_on, datetime.date(1995, 1, 1)), datetime.date(2024, 6, 30)
        )
        org = OrgPlan(
            self.union_code(region, base=True),
            "",
            "joint_base" if joint else "base",
            parent.code,
            region,
            founded,
            channel=rng.choice(("employer", "tax")),
            average_wage_fen=wage,
            platform=platform,
        )
        if joint:
            org.name = name or ""
            org.employers = [
                self.employer(region, self.company_name(city, platform), 0)
                for _ in range(rng.randint(2, 6))
            ]
        else:
            employer = self.employer(region, self.company_name(city, platform), 0)
            org.name = f"{employer.name}工会委员会"
            org.employer_code = employer.code
            org.employers = [employer]
        org.dues_with_members = rng.random() < 0.12
        return self.add(org)

    # --- people ------------------------------------------------------------------------------

    def person(self, org: OrgPlan, joined_on: datetime.date | None) -> Person:
        rng = self.rng
        migrant = rng.random() < (0.6 if org.platform else 0.22)
        nef = rng.random() < (0.75 if org.platform else 0.004)
        male = rng.random() < (0.8 if org.platform else 0.56)
        region = rng.choice(self.migrant_counties if migrant else self.local_counties)
        if not migrant and rng.random() < 0.35:
            region = "330106"
        age = rng.randint(20, 58)
        birth = _date_between(
            rng, datetime.date(DEMO_YEAR - age - 1, 1, 2), datetime.date(DEMO_YEAR - age, 1, 1)
        )
        while True:
            sequence = rng.randrange(500) * 2 + (1 if male else 0)
            number = synthetic.id_number(region, birth, sequence)
            if number not in self.id_numbers:
                self.id_numbers.add(number)
                break
            birth += datetime.timedelta(days=1)
        if joined_on is None:
            # A month after the 18th birthday, whatever the birthday (29 February included).
            adult = datetime.date(birth.year + 18, birth.month, 1) + datetime.timedelta(days=31)
            earliest = max(org.founded_on, adult)
            joined_on = _date_between(rng, earliest, datetime.date(DEMO_YEAR - 1, 12, 31))
        mobile = None
        if rng.random() < 0.7:
            mobile = "1" + rng.choice("3456789") + f"{rng.randrange(10**9):09d}"
        # Whole tens of yuan, as payslips show; never below the minimum wage.
        wage_tens = round(org.average_wage_fen * rng.lognormvariate(0, 0.3) / 1000)
        wage = max(MIN_WAGE_FEN, wage_tens * 1000)
        self.people.append(
            Person(number, self.person_name(male), mobile, migrant, nef, org.code, joined_on, wage)
        )
        return self.people[-1]

    def populate(self, counties: list[str]) -> tuple[list[int], list[Story]]:
        """Members for every base union; returns pre-year member indices and in-year joins."""
        rng = self.rng
        by_county: dict[str, list[OrgPlan]] = {code: [] for code in counties}
        county_of = {o.code: o.code for o in self.orgs if o.level == "county"}
        for org in self.orgs:
            if org.level == "township":
                county_of[org.code] = org.parent_code or ""
        for org in self.orgs:
            if org.is_base:
                by_county[county_of[org.parent_code or ""]].append(org)
        pre_year: list[int] = []
        stories: list[Story] = []
        for county_code in counties:
            bases = by_county[county_code]
            members = max(
                MIN_MEMBERS_PER_COUNTY, round(BASES_PER_COUNTY * MEMBERS_PER_BASE * self.scale)
            )
            weights = [rng.lognormvariate(0, 1.1) for _ in bases]
            total = sum(weights)
            counts = [max(1, math.floor(members * w / total)) for w in weights]
            for org, count in zip(bases, counts, strict=True):
                rate = rng.uniform(0.72, 0.98)
                org.employee_count = max(count, math.ceil(count / rate))
                self.set_payrolls(org)
                for _ in range(count):
                    if rng.random() < IN_YEAR_JOIN_SHARE:
                        day = _day_in(rng, rng.randint(1, 12))
                        self.person(org, day)
                        stories.append(Story(day, "join", len(self.people) - 1))
                    else:
                        self.person(org, None)
                        pre_year.append(len(self.people) - 1)
        for union, founded in self.in_year_bases:
            for _ in range(max(3, round(union.employee_count * 0.8))):
                day = _date_between(rng, founded, datetime.date(DEMO_YEAR, 12, 20))
                self.person(union, day)
                stories.append(Story(day, "join", len(self.people) - 1))
        return pre_year, stories

    def set_payrolls(self, org: OrgPlan) -> None:
        staff = org.employee_count or 1
        if len(org.employers) == 1:
            org.employers[0].payroll_fen = staff * org.average_wage_fen
            return
        weights = [self.rng.random() + 0.2 for _ in org.employers]
        for employer, weight in zip(org.employers, weights, strict=True):
            share = max(1, round(staff * weight / sum(weights)))
            employer.payroll_fen = share * org.average_wage_fen

    # --- a year of membership changes ---------------------------------------------------------

    def year_stories(self, pre_year: list[int]) -> list[Story]:
        rng = self.rng
        pool = list(pre_year)
        rng.shuffle(pool)
        n = len(pool)
        bases = [o.code for o in self.orgs if o.is_base]

        def take(share: float, minimum: int) -> list[int]:
            count = min(len(pool), max(minimum, round(n * share)))
            return [pool.pop() for _ in range(count)]

        stories: list[Story] = []
        for i, p in enumerate(take(0.003, 3)):
            home = self.people[p].organization_code
            target = rng.choice([b for b in bases if b != home])
            start = _day_in(rng, rng.randint(1, 11))
            stories.append(Story(start, "transfer_start", p, target, 1))
            if i == 0:
                stories.append(Story(start + datetime.timedelta(days=5), "transfer_cancel", p))
            else:
                stories.append(
                    Story(
                        start + datetime.timedelta(days=rng.randint(3, 20)),
                        "transfer_accept",
                        p,
                        target,
                    )
                )
        p = take(0, 1)[0]
        target = rng.choice([b for b in bases if b != self.people[p].organization_code])
        stories.append(Story(_day_in(rng, 12, 1, 20), "transfer_start", p, target, 1))
        for i, p in enumerate(take(0.006, 2)):
            retained = _day_in(rng, rng.randint(1, 9))
            stories.append(Story(retained, "retain", p, code=rng.choice((2, 3))))
            if i % 3 == 0:
                stories.append(
                    Story(retained + datetime.timedelta(days=rng.randint(40, 100)), "reinstate", p)
                )
        for i, p in enumerate(take(0.012, 3)):
            left = _day_in(rng, rng.randint(1, 10))
            change, reason = rng.choices(((6, 5), (6, 5), (5, 6)), (70, 25, 5))[0]
            stories.append(Story(left, "exit", p, code=change, reason=reason))
            if i % 5 == 0:
                home = self.people[p].organization_code
                target = rng.choice([b for b in bases if b != home])
                stories.append(
                    Story(left + datetime.timedelta(days=rng.randint(20, 60)), "rejoin", p, target)
                )
        for p in take(0.001, 1):
            stories.append(Story(_day_in(rng, rng.randint(1, 12)), "correct", p))
        return stories

    def organization_changes(self) -> None:
        rng = self.rng
        bases = [o for o in self.orgs if o.level == "base"]
        renamed = rng.choice(bases)
        self.org_changes.append(
            OrgChange(
                _day_in(rng, 3),
                "rename",
                renamed.code,
                renamed.name.replace("有限公司", "集团有限公司", 1),
            )
        )
        counties = {o.code for o in self.orgs if o.level == "county"}
        direct = [o for o in bases if o.parent_code in counties]
        townships = [o for o in self.orgs if o.level == "township"]
        if direct:
            moved = rng.choice(direct)
            target = rng.choice([t for t in townships if t.parent_code == moved.parent_code])
            self.org_changes.append(
                OrgChange(_day_in(rng, 7, 12, 20), "move", moved.code, target.code)
            )


def build_plan(size: str = "county", scale: float = 1.0, seed: int = 1) -> DemoPlan:
    """The whole synthetic deployment, deterministic for (size, scale, seed)."""
    builder = _Builder(size, scale, seed)
    counties = builder.build_tree()
    pre_year, joins = builder.populate(counties)
    stories = joins + builder.year_stories(pre_year)
    builder.organization_changes()
    # Follow-ups that would fall after the year (a late reinstatement) are left for next year.
    stories = [s for s in stories if s.on.year == DEMO_YEAR]
    stories.sort(key=lambda s: (s.on, s.person))
    return DemoPlan(
        size=size,
        scale=scale,
        seed=seed,
        root_code=builder.orgs[0].code,
        organizations=builder.orgs,
        people=builder.people,
        pre_year_members=pre_year,
        stories=stories,
        org_changes=sorted(builder.org_changes, key=lambda c: c.on),
        in_year_organizations={o.code: o for o, _ in builder.in_year_bases},
        reserve_employers=builder.reserve_employers,
        policies=LEVY_POLICIES,
        counties=counties,
    )
