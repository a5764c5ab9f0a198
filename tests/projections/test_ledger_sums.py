"""The statements' fast path (ledger_sums for whole years and months, lines for the edge days,
finer rows for what was recorded after "known at") equals a plain sum over the ledger lines, to
the fen, for random ranges, known_at moments and scopes, on both stores.

The histories post vouchers recorded at different times, some back-dated into earlier months
and years, so that a month's or a year's sum is often recorded partly after a known_at moment.
"""

from __future__ import annotations

import datetime
import random
from collections import defaultdict

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.accounts import ACCOUNTS
from projections.read_models.ledger_sums import split
from projections.read_models.rows import KNOWN_NOW_US, day_int, from_micros
from projections.read_models.scope import subtree_codes
from service.commands import RecordExpense
from storage.database import _to_psycopg, pg_array
from tests.conftest import BACKENDS, PG_ADMIN_URL
from tests.projections.helpers import assert_equal_to_rebuild
from tests.projections.history import HistoryWriter, random_history

D = datetime.date
QUERIES = 60


def _random_day(rng: random.Random) -> datetime.date:
    """Mostly month and year edges (whole periods), else any day of 2022-2026."""
    year = rng.randint(2022, 2026)
    month = rng.randint(1, 12)
    kind = rng.random()
    if kind < 0.25:
        return D(year, month, 1)
    if kind < 0.5:
        return D(year + month // 12, month % 12 + 1, 1) - datetime.timedelta(days=1)
    if kind < 0.6:
        return rng.choice([D(year, 1, 1), D(year, 12, 31)])
    return D(year, 1, 1) + datetime.timedelta(days=rng.randint(0, 364))


def _back_dated(writer: HistoryWriter, rng: random.Random) -> None:
    """An expense effective some months before the writer's current date (recorded now)."""
    day = writer.day - datetime.timedelta(days=rng.randint(20, 500))
    if day < D(2023, 1, 2):
        return
    writer._voucher(
        writer._try(
            writer.ledger.execute,
            RecordExpense(
                organization_code=rng.choice(writer.bases),
                account_code=rng.choice(["501", "50404"]),
                amount=f"{rng.randint(1, 90)}.25",
                earmarked=rng.random() < 0.5,
                description="补记",
                paid_on=day.isoformat(),
            ),
        )
    )


def _plain(
    lines: list[tuple], codes: set[str], first: int, last: int, k_us: int
) -> dict[tuple[str, int], tuple[int, int]]:
    sums: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for org, acct, flag, debit, credit, day, at in lines:
        if org in codes and first <= day <= last and at <= k_us:
            sums[(acct, flag)][0] += debit
            sums[(acct, flag)][1] += credit
    return {key: (d, c) for key, (d, c) in sums.items()}


def _nonzero(flows: dict[tuple[str, int], tuple[int, int]]) -> dict:
    return {key: value for key, value in flows.items() if value != (0, 0)}


@pytest.mark.parametrize("kind", BACKENDS)
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(20, 90), batch=st.integers(1, 30))
def test_fast_statements_equal_line_sums(tmp_path_factory, kind, seed, steps, batch):
    with random_history(kind, tmp_path_factory.mktemp("sums"), seed) as (_, rm, writer, rng):
        for i in range(steps):
            if rng.random() < 0.15:
                _back_dated(writer, rng)
            else:
                writer.step()
            if i % 7 == 0:
                rm.catch_up(max_events=rng.randint(1, 40), batch_events=batch)
        rm.catch_up(batch_events=batch)
        with rm.store.reader() as cur:
            cur.execute(
                "SELECT organization_code, account_code, earmarked, debit_fen,"
                " credit_fen, effective_on, recorded_at_us, kind = 'year_end' OR voucher_id IN ("
                "  SELECT v.voucher_id FROM rm_vouchers v JOIN rm_vouchers o"
                "  ON o.voucher_id = v.reverses WHERE o.kind = 'year_end') FROM rm_ledger_lines"
            )
            rows = cur.fetchall()
            lines = [tuple(r[:7]) for r in rows]
            # 02表 leaves out the year-end close (年终结账, on 31 December) and its reversals.
            flow_lines = [tuple(r[:7]) for r in rows if not (r[7] and r[5] % 10_000 == 1231)]
            cur.execute("SELECT code FROM rm_organizations")
            orgs = sorted(r[0] for r in cur.fetchall())
        moments = sorted({line[6] for line in lines})
        # Months of one organisation, account and column holding lines recorded at different
        # times: a known_at between them splits the month's (and the year's) row.
        recorded: dict[tuple, list[int]] = defaultdict(list)
        for org, acct, flag, _, _, day, at in lines:
            recorded[(org, acct, flag, day // 100)].append(at)
        split_months = sorted(
            (key, sorted(ats)) for key, ats in recorded.items() if min(ats) < max(ats)
        )
        tree = writer.tree
        for _ in range(QUERIES):
            a, b = sorted((_random_day(rng), _random_day(rng)))
            if rng.random() < 0.2:
                a = D.min  # from the beginning: the balance sheet's and the opening's range
            k_us = KNOWN_NOW_US
            if moments and rng.random() < 0.7:
                k_us = rng.choice(moments) + rng.choice([-1, 0, 0, 1])
            if rng.random() < 0.5:
                scope, code = "subtree", rng.choice([tree.province, tree.county, tree.township])
            else:
                scope, code = "self", rng.choice(orgs)
            if split_months and rng.random() < 0.5:
                (org, _, _, month), ats = rng.choice(split_months)
                k_us = rng.choice(ats[:-1]) + rng.choice([0, 1])
                first = D(month // 100, month % 100, 1)
                a, b = min(a, first), max(b, first)
                if rng.random() < 0.5:
                    scope, code = "self", org
            with rm.store.reader() as cur:
                codes = (
                    set(subtree_codes(rm.store, cur, rm.tables, code, day_int(b), k_us))
                    if scope == "subtree"
                    else {code}
                )
            (fast,) = rm.statements._flows(code, scope, day_int(b), k_us, [(a, b)])
            expected = _plain(lines, codes, day_int(a), day_int(b), k_us)
            assert _nonzero(fast) == _nonzero(expected), (a, b, k_us, scope, code)
            # The statements built on the fast path show the same figures.
            known_at = (
                None if k_us == KNOWN_NOW_US else datetime.datetime.fromisoformat(from_micros(k_us))
            )
            ie = rm.income_expenditure(code, date_from=a, date_to=b, known_at=known_at, scope=scope)
            totals = defaultdict(int)
            flows = _plain(flow_lines, codes, day_int(a), day_int(b), k_us)
            for (acct, _), (debit, credit) in flows.items():
                kind_ = ACCOUNTS[acct].kind
                if kind_.value in ("income", "expenditure"):
                    signed = debit - credit
                    totals[kind_.value] += signed if kind_.debit_normal else -signed
            assert ie["totals"]["income"] == f"{totals['income'] / 100:.2f}"
            assert ie["totals"]["expenditure"] == f"{totals['expenditure'] / 100:.2f}"
        assert_equal_to_rebuild(rm)


@pytest.mark.parametrize(
    ("first", "last", "years", "months", "days"),
    [
        (D(2025, 1, 1), D(2025, 12, 31), [(202501, 202501)], [], []),
        (D(2025, 1, 1), D(2025, 1, 31), [], [(202501, 202501)], []),
        (D(2025, 1, 2), D(2025, 1, 31), [], [], [(20250102, 20250131)]),
        (D(2024, 2, 10), D(2024, 2, 29), [], [], [(20240210, 20240229)]),
        (
            D(2024, 1, 15),
            D(2026, 3, 10),
            [(202501, 202501)],
            [(202402, 202412), (202601, 202602)],
            [(20240115, 20240131), (20260301, 20260310)],
        ),
        (D(2024, 11, 30), D(2025, 2, 28), [], [(202412, 202502)], [(20241130, 20241130)]),
        (D.min, D(2025, 6, 14), [(101, 202401)], [(202501, 202505)], [(20250601, 20250614)]),
        (D(2025, 3, 1), D(2025, 2, 28), [], [], []),
    ],
)
def test_split(first, last, years, months, days):
    pieces = split(first, last)
    assert (pieces.years, pieces.months, pieces.days) == (years, months, days)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["a1b2-c3", "d4", "e5"], "text"),
        (["with,comma", "plain"], "text"),  # the list form
        ([202501, -7, 0], "bigint"),
        (["only"], "text"),
    ],
)
def test_pg_array_parameters_arrive_as_the_values(values, kind):
    sql, value = pg_array(values, kind)
    with psycopg.connect(PG_ADMIN_URL) as conn:
        got = conn.execute(_to_psycopg(f"SELECT {sql}"), (value,)).fetchone()[0]
    assert got == values
