"""The national roll-up (全总汇总) from a run of the Spark rebuild: 01表 and 02表 figures and the
membership statistics, per deployment, per organisation level and summed over all of them,
as of a date and as known at a moment.

Spark filters and sums the run's ledger lines and roll spans (what the deployments' own
statements and roll summaries read from their read models); the figures are then made by the
statements' own code (projections/read_models/statements.py: _balances for 01表, _FlowFigures
for 02表), so a roll-up equals the sum of the deployments' own statements to the fen:
tests/projections/test_spark_job.py checks it. A deployment's statement here is its root's
with scope subtree, not consolidated: every organisation of a deployment is under its root.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from projections.read_models.rows import KNOWN_NOW_US, amount, day_int, from_micros
from projections.read_models.statements import _balances, _FlowFigures
from projections.spark.job import member_figures, on_roll, read_run

TOTAL = "全部"  # the key of the sum over every deployment (or every level)
Flows = dict[tuple[str, int], tuple[int, int]]


def _flows(
    lines: Any, first: int | None, last: int, k_us: int, keys: list[str]
) -> dict[tuple, Flows]:
    """(grouping keys) -> (account, earmarked) -> (debit, credit) of the lines effective in
    first..last (None: from the beginning) and recorded by k."""
    from pyspark.sql import functions as F

    chosen = lines.filter((F.col("effective_on") <= last) & (F.col("recorded_at_us") <= k_us))
    if first is not None:
        chosen = chosen.filter(F.col("effective_on") >= first)
    rows = (
        chosen.groupBy(*keys, "account_code", "earmarked")
        .agg(F.sum("debit_fen").alias("d"), F.sum("credit_fen").alias("c"))
        .collect()
    )
    result: dict[tuple, Flows] = defaultdict(dict)
    for r in rows:
        group = tuple(r[k] for k in keys)
        result[group][(r["account_code"], int(r["earmarked"]))] = (int(r["d"]), int(r["c"]))
    return result


def _summed(groups: dict[tuple, Flows]) -> Flows:
    total: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for flows in groups.values():
        for key, (d, c) in flows.items():
            total[key][0] += d
            total[key][1] += c
    return {k: (v[0], v[1]) for k, v in total.items()}


def _balance_sheet(closing: Flows, opening: Flows) -> dict[str, Any]:
    close, open_ = _balances(closing), _balances(opening)
    codes = sorted(set(close.shown) | set(open_.shown))
    return {
        "lines": {
            c: {"opening": amount(open_.shown.get(c, 0)), "closing": amount(close.shown.get(c, 0))}
            for c in codes
        },
        "totals": {
            name: {"opening": amount(getattr(open_, name)), "closing": amount(getattr(close, name))}
            for name in ("assets", "liabilities", "net_assets", "right", "surplus")
        },
    }


def _income_expenditure(period: Flows, month: Flows, year: Flows) -> dict[str, Any]:
    figures = [_FlowFigures(f) for f in (period, month, year)]
    codes = sorted(set(figures[0].earmarked) | set(figures[0].general))
    return {
        "lines": {c: figures[0].line(c) for c in codes},
        "totals": figures[0].totals(),
        "month": figures[1].totals(),
        "year_to_date": figures[2].totals(),
    }


def _rate(members: int, retained: int, employees: int) -> str | None:
    if not employees:
        return None
    return str(
        (Decimal(members - retained) / Decimal(employees)).quantize(
            Decimal("0.0001"), rounding=ROUND_HALF_UP
        )
    )


def _membership(spark: Any, t: dict[str, Any], d: int, k_us: int) -> dict[tuple, dict[str, int]]:
    """(deployment, level) -> the roll summary's counts and employees (rolls.py summary)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    orgs = t["organizations"].select(
        F.col("deployment").alias("o_dep"), F.col("code").alias("o_code"), "level"
    )
    points = spark.createDataFrame([(d, k_us)], "d bigint, k_us bigint")
    rows = (
        on_roll(t["roll_spans"], t["member_details"], points)
        .join(
            orgs,
            (F.col("o_dep") == F.col("s.deployment"))
            & (F.col("o_code") == F.col("s.organization_code")),
        )
        .groupBy(F.col("s.deployment").alias("deployment"), "level")
        .agg(*member_figures())
        .collect()
    )
    result: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        for name in ("members", "retained", "women", "migrant_workers", "new_employment_form"):
            result[(r["deployment"], r["level"])][name] += int(r[name] or 0)
    # Employees: each organisation's latest count effective by d and recorded by k, unless
    # it was dissolved by d (as known at k).
    e = t["org_employees"].filter((F.col("valid_from") <= d) & (F.col("recorded_at_us") <= k_us))
    latest = Window.partitionBy("deployment", "code").orderBy(
        F.col("valid_from").desc(), F.col("position").desc()
    )
    e = e.withColumn("n", F.row_number().over(latest)).filter(F.col("n") == 1)
    o = t["organizations"].filter(
        ~(
            F.col("dissolved_on").isNotNull()
            & (F.col("dissolved_on") <= d)
            & (F.col("dissolved_at_us") <= k_us)
        )
    )
    for r in (
        e.join(o.select("deployment", "code", "level"), ["deployment", "code"])
        .groupBy("deployment", "level")
        .agg(F.sum("employee_count").alias("employees"))
        .collect()
    ):
        result[(r["deployment"], r["level"])]["employees"] += int(r["employees"] or 0)
    return result


def _membership_figures(counts: dict[str, int]) -> dict[str, Any]:
    figures = {
        name: int(counts.get(name, 0))
        for name in (
            "members",
            "retained",
            "women",
            "migrant_workers",
            "new_employment_form",
            "employees",
        )
    }
    figures["membership_rate"] = _rate(
        figures["members"], figures["retained"], figures["employees"]
    )
    return figures


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for name, value in counts.items():
        into[name] = into.get(name, 0) + value


def rollup(
    spark: Any,
    run_dir: Path,
    *,
    as_of: datetime.date,
    date_from: datetime.date,
    known_at_us: int,
) -> dict[str, Any]:
    """The roll-up of a run as of a day (01表, membership) and over date_from..as_of (02表),
    as known at known_at_us: per deployment, per level (over all deployments) and in total."""
    from pyspark.sql import functions as F

    t = read_run(spark, run_dir)
    v = t["vouchers"].select("deployment", "voucher_id", "kind", "reverses")
    o = v.select(
        F.col("deployment").alias("o_dep"),
        F.col("voucher_id").alias("o_id"),
        F.col("kind").alias("reversed_kind"),
    )
    levels = t["organizations"].select(
        "deployment", F.col("code").alias("organization_code"), "level"
    )
    lines = (
        t["ledger_lines"]
        .join(v.select("deployment", "voucher_id", "reverses"), ["deployment", "voucher_id"])
        .join(
            o,
            (F.col("o_dep") == F.col("deployment")) & (F.col("o_id") == F.col("reverses")),
            "left",
        )
        .join(levels, ["deployment", "organization_code"], "left")
    )
    # 02表 leaves out the year-end close and its reversals, both dated 31 December
    # (statements.py _year_end_flows).
    closing = ((F.col("kind") == "year_end") | (F.col("reversed_kind") == "year_end")) & (
        (F.col("effective_on") % 10_000) == 1231
    )
    flow_lines = lines.filter(~closing)
    d = day_int(as_of)
    prior = day_int(datetime.date(as_of.year - 1, 12, 31))
    keys = ["deployment", "level"]
    sheet_close = _flows(lines, None, d, known_at_us, keys)
    sheet_open = _flows(lines, None, prior, known_at_us, keys)
    period = _flows(flow_lines, day_int(date_from), d, known_at_us, keys)
    month = _flows(flow_lines, day_int(as_of.replace(day=1)), d, known_at_us, keys)
    year = _flows(flow_lines, day_int(as_of.replace(month=1, day=1)), d, known_at_us, keys)
    members = _membership(spark, t, d, known_at_us)

    groups = set(sheet_close) | set(sheet_open) | set(period) | set(members)
    deployments = sorted({g[0] for g in groups})
    level_names = sorted({g[1] for g in groups if g[1] is not None})

    def pick(data: dict[tuple, Any], test: Any) -> dict[tuple, Any]:
        return {g: x for g, x in data.items() if test(g)}

    def figures(test: Any) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for g, c in members.items():
            if test(g):
                _add(counts, c)
        return {
            "balance_sheet": _balance_sheet(
                _summed(pick(sheet_close, test)), _summed(pick(sheet_open, test))
            ),
            "income_expenditure": _income_expenditure(
                _summed(pick(period, test)), _summed(pick(month, test)), _summed(pick(year, test))
            ),
            "membership": _membership_figures(counts),
        }

    return {
        "as_of": as_of.isoformat(),
        "from": date_from.isoformat(),
        "known_at_us": known_at_us,
        "run": run_dir.name,
        "deployments": {name: figures(lambda g, n=name: g[0] == n) for name in deployments},
        "levels": {lv: figures(lambda g, lv=lv: g[1] == lv) for lv in level_names},
        TOTAL: figures(lambda g: True),
    }


def text(report: dict[str, Any]) -> str:
    """The roll-up as plain text: the totals of 01表, 02表 and the membership statistics per
    deployment, per level and over all."""
    out = [
        f"全总汇总 (national roll-up) of {report['run']}: 01表 as of {report['as_of']}, "
        f"02表 {report['from']}..{report['as_of']}, known "
        + (
            "now"
            if report["known_at_us"] >= KNOWN_NOW_US
            else f"at {from_micros(report['known_at_us'])}"
        ),
    ]

    def block(title: str, f: dict[str, Any]) -> None:
        bs, ie, m = f["balance_sheet"]["totals"], f["income_expenditure"]["totals"], f["membership"]
        out.append(f"\n[{title}]")
        out.append(
            f"  01表 资产合计 {bs['assets']['closing']}  负债合计 {bs['liabilities']['closing']}"
            f"  净资产合计 {bs['net_assets']['closing']}  (年初资产 {bs['assets']['opening']})"
        )
        out.append(
            f"  02表 收入合计 {ie['income']} (经费专项 {ie['income_earmarked']},"
            f" 一般 {ie['income_general']})  支出合计 {ie['expenditure']}  结余 {ie['surplus']}"
        )
        out.append(
            f"  会员 {m['members']}  保留会籍 {m['retained']}  女性 {m['women']}"
            f"  农民工 {m['migrant_workers']}  新就业形态 {m['new_employment_form']}"
            f"  职工 {m['employees']}  入会率 {m['membership_rate']}"
        )

    for name, f in report["deployments"].items():
        block(f"deployment {name}", f)
    for level, f in report["levels"].items():
        block(f"level {level}", f)
    block("all deployments", report[TOTAL])
    return "\n".join(out) + "\n"
