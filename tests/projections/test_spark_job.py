"""The Spark rebuild and the national roll-up on three small demo deployments (a city on
PostgreSQL, two counties on SQLite), exported and sealed, in local mode with ONE session for
the module (starting Spark takes seconds).

The Spark rebuild must equal each deployment's own read models, the roll-up the sum of their
own statements to the fen; a tampered or removed segment stops the job naming it; a task that
fails once (a lost executor) is re-run and the output is the same.
"""

from __future__ import annotations

import base64
import datetime
import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pyspark = pytest.importorskip("pyspark", reason="the spark extra: pip install -e '.[spark]'")

from projections.audit.export import MANIFEST_NAME, export_log  # noqa: E402
from projections.audit.trail import AuditTrail  # noqa: E402
from projections.read_models.models import ReadModels  # noqa: E402
from projections.spark import rollup as rollup_module  # noqa: E402
from projections.spark.job import (  # noqa: E402
    FAIL_ONCE_ENV,
    DeploymentInput,
    JobRefused,
    month_end,
    read_run,
    run_job,
    spark_session,
)
from scripts.demo_data import build_plan  # noqa: E402
from scripts.demo_loader import DemoLoader  # noqa: E402
from service.application import Ledger  # noqa: E402
from storage.keys import configured_key  # noqa: E402
from tests.conftest import Backend  # noqa: E402

# (name, store, size, scale, seed): about 2,000-5,000 events each.
DEPLOYMENTS = (
    ("city", "postgres", "city", 0.0001, 1),
    ("county-a", "sqlite", "county", 0.002, 2),
    ("county-b", "sqlite", "county", 0.002, 3),
)
SEGMENT_EVENTS = 1_000
AS_OF = datetime.date(2025, 9, 30)
FROM = datetime.date(2025, 1, 1)


class Demo:
    def __init__(self, name: str, backend: Backend, ledger: Ledger, export: Path) -> None:
        self.name = name
        self.backend = backend
        self.ledger = ledger
        self.export = export
        self.read_models = ReadModels(ledger)

    def input(self, export: Path | None = None) -> DeploymentInput:
        key = configured_key(self.backend.settings).key
        assert key is not None and self.backend.settings.audit_public_key is not None
        return DeploymentInput(
            name=self.name,
            export=export or self.export,
            master_key=key,
            public_keys=frozenset({self.backend.settings.audit_public_key}),
            database_url=self.backend.url,
        )


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Demo]]:
    made: list[Demo] = []
    try:
        for name, kind, size, scale, seed in DEPLOYMENTS:
            where = tmp_path_factory.mktemp(name)
            backend = Backend(kind, where)
            ledger = backend.open()
            DemoLoader(ledger, build_plan(size, scale, seed)).run()
            demo = Demo(name, backend, ledger, where / "export")
            made.append(demo)
            demo.read_models.catch_up()
            AuditTrail(ledger).seal()
            export_log(ledger, demo.export, segment_events=SEGMENT_EVENTS)
        yield made
    finally:
        for demo in made:
            demo.read_models.close()
            demo.backend.close()


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("drill") / "fail-once"


@pytest.fixture(scope="module")
def spark(drill: Path) -> Iterator[Any]:
    # local[2, 2]: two cores, and a failed task is tried once more (as on a cluster).
    import os

    os.environ[FAIL_ONCE_ENV] = str(drill)  # the Python workers inherit it
    session = spark_session("local[2,2]", "union-ledger-tests")
    try:
        yield session
    finally:
        session.stop()
        os.environ.pop(FAIL_ONCE_ENV, None)


@pytest.fixture(scope="module")
def run(spark: Any, demos: list[Demo], tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run_job(spark, [d.input() for d in demos], tmp_path_factory.mktemp("out"))


def test_the_spark_rebuild_equals_each_deployments_read_models(run: Any, demos: list) -> None:
    assert run.events == sum(d.ledger.head_position() for d in demos)
    for demo in demos:
        comparison = run.comparisons[demo.name]
        assert run.live_positions[demo.name] == demo.ledger.head_position()
        assert comparison.equal, comparison.differences[:5]
        rows = {t.table: t.rows_rebuilt for t in comparison.tables}
        assert rows["ledger_sums"] > 0 and rows["roll_spans"] > 0 and rows["ledger_lines"] > 0


def test_the_outputs_hold_no_personal_data(run: Any, demos: list[Demo]) -> None:
    from pyspark.sql import SparkSession

    for name, table in read_run(SparkSession.getActiveSession(), run.run_dir).items():
        columns = set(table.columns)
        assert not columns & {"name_enc", "id_number_enc", "mobile_enc", "id_number_hash"}
        # A union's name is public; no table about members has a name column.
        assert "name" not in columns or name == "organizations"
    text = b"".join(p.read_bytes() for p in run.run_dir.rglob("*") if p.is_file())
    for demo in demos:
        key = configured_key(demo.backend.settings).key
        assert key is not None
        assert base64.b64encode(key) not in text and key not in text


def test_the_month_end_sums_equal_the_lines_known_at_each_month_end(
    spark: Any, run: Any, demos: list[Demo]
) -> None:
    from pyspark.sql import functions as F

    known = read_run(spark, run.run_dir)["ledger_sums_known"]
    for demo in demos:
        lines = demo.read_models.statements
        rows = known.filter(F.col("deployment") == demo.name).collect()
        assert rows
        by_key: dict[tuple, list[tuple[int, int, int]]] = {}
        for r in rows:
            key = (r["organization_code"], r["period"], r["account_code"], r["earmarked"])
            by_key.setdefault(key, []).append((r["known_through"], r["debit_fen"], r["credit_fen"]))
        with demo.read_models.store.reader() as cur:
            cur.execute(
                f"SELECT organization_code, effective_on, account_code, earmarked, debit_fen,"
                f" credit_fen, recorded_at_us FROM {lines.lines_table}"
            )
            all_lines = cur.fetchall()
        months = sorted({r["known_through"] for r in rows})
        assert months
        earlier = months[0] - 1 if months[0] % 100 != 1 else months[0] - 89
        for month in (earlier, *months):
            _, k_us = month_end(month)
            expected: dict[tuple, list[int]] = {}
            for org, day, acct, flag, debit, credit, at in all_lines:
                if at <= k_us:
                    s = expected.setdefault((org, day // 100, acct, flag), [0, 0])
                    s[0] += debit
                    s[1] += credit
            found = {}
            for key, steps in by_key.items():
                upto = [s for s in sorted(steps) if s[0] <= month]
                if upto:
                    found[key] = [upto[-1][1], upto[-1][2]]
            assert found == expected, (demo.name, month)


def test_membership_counts_equal_the_roll_summaries(
    spark: Any, run: Any, demos: list[Demo]
) -> None:
    from pyspark.sql import functions as F

    counts = read_run(spark, run.run_dir)["membership_counts"]
    for demo in demos:
        mine = counts.filter(F.col("deployment") == demo.name)
        month = mine.agg(F.max("month")).collect()[0][0]
        rows = sorted(mine.filter(F.col("month") == month).collect(), key=lambda r: -r["members"])[
            :5
        ]
        assert rows and rows[0]["members"] > 0
        d, k_us = month_end(month)
        for r in rows:
            summary = demo.read_models.rolls.summary(
                r["organization_code"],
                as_of=datetime.date(d // 10_000, d // 100 % 100, d % 100),
                k_us=k_us,
                scope="self",
            )
            for name in ("members", "retained", "women", "migrant_workers", "new_employment_form"):
                assert r[name] == summary[name], (demo.name, r["organization_code"], name)


def _root(demo: Demo) -> str:
    with demo.read_models.store.reader() as cur:
        cur.execute("SELECT code FROM rm_organizations WHERE parent_code IS NULL")
        (code,) = cur.fetchone()
    return str(code)


def _sum_statements(demos: list[Demo], k_us: int) -> dict[str, Any]:
    """The deployments' own 01表, 02表 and roll summaries of their roots' subtrees, summed."""
    sheet: dict[str, Decimal] = {}
    flows: dict[str, Decimal] = {}
    members: dict[str, int] = {}
    for demo in demos:
        root = _root(demo)
        rm = demo.read_models
        bs = rm.statements.balance_sheet(root, as_of=AS_OF, k_us=k_us, scope="subtree")
        for name, pair in bs["totals"].items():
            for column, value in pair.items():
                key = f"{name}.{column}"
                sheet[key] = sheet.get(key, Decimal(0)) + Decimal(value)
        for line in bs["lines"]:
            if line["account_code"]:
                key = f"line.{line['account_code']}.closing"
                sheet[key] = sheet.get(key, Decimal(0)) + Decimal(line["closing"])
        ie = rm.statements.income_expenditure(
            root, date_from=FROM, date_to=AS_OF, k_us=k_us, scope="subtree"
        )
        for key, value in ie["totals"].items():
            if isinstance(value, str):
                flows[key] = flows.get(key, Decimal(0)) + Decimal(value)
        for line in ie["lines"]:
            key = f"line.{line['account_code']}"
            flows[key] = flows.get(key, Decimal(0)) + Decimal(line["amount"])
        summary = rm.rolls.summary(root, as_of=AS_OF, k_us=k_us, scope="subtree")
        for key, value in summary.items():
            if isinstance(value, int):
                members[key] = members.get(key, 0) + value
    return {"sheet": sheet, "flows": flows, "members": members}


def _moment_within(demos: list[Demo]) -> int:
    """A moment while the second deployment was being loaded: some of its lines and members
    recorded by then, some after."""
    rm = demos[1].read_models
    with rm.store.reader() as cur:
        cur.execute(f"SELECT recorded_at_us FROM {rm.statements.lines_table} ORDER BY position")
        times = [int(r[0]) for r in cur.fetchall()]
    return times[len(times) * 2 // 3]


@pytest.mark.parametrize("known", ["now", "while loading"])
def test_the_rollup_equals_the_sum_of_the_deployments_statements(
    spark: Any, run: Any, demos: list[Demo], known: str
) -> None:
    k_us = 2**62 if known == "now" else _moment_within(demos)
    report = rollup_module.rollup(spark, run.run_dir, as_of=AS_OF, date_from=FROM, known_at_us=k_us)
    expected = _sum_statements(demos, k_us)
    total = report[rollup_module.TOTAL]
    bs = total["balance_sheet"]
    for name in ("assets", "liabilities", "net_assets", "surplus"):
        for column in ("opening", "closing"):
            assert Decimal(bs["totals"][name][column]) == expected["sheet"][f"{name}.{column}"]
    assert (
        Decimal(bs["totals"]["right"]["closing"])
        == expected["sheet"]["liabilities_and_net_assets.closing"]
    )
    for key, value in expected["sheet"].items():
        if key.startswith("line."):
            code = key.split(".")[1]
            assert Decimal(bs["lines"].get(code, {"closing": "0"})["closing"]) == value, code
    ie = total["income_expenditure"]
    for key, value in expected["flows"].items():
        if key.startswith("line."):
            code = key.split(".")[1]
            assert Decimal(ie["lines"].get(code, {"amount": "0"})["amount"]) == value, code
        else:
            assert Decimal(ie["totals"][key]) == value, key
    m = total["membership"]
    for key, value in expected["members"].items():
        assert m[key] == value, key
    assert expected["members"]["members"] > 0 and expected["sheet"]["assets.closing"] > 0
    # Levels and deployments each sum to the total.
    for part in ("levels", "deployments"):
        assert sum(p["membership"]["members"] for p in report[part].values()) == m["members"]
        assert sum(
            Decimal(p["balance_sheet"]["totals"]["assets"]["closing"])
            for p in report[part].values()
        ) == Decimal(bs["totals"]["assets"]["closing"])
    assert "all deployments" in rollup_module.text(report)


def _copy_export(demo: Demo, where: Path) -> Path:
    copy = where / demo.name
    shutil.copytree(demo.export, copy)
    return copy


def test_a_flipped_byte_in_a_segment_stops_the_job_naming_it(
    spark: Any, demos: list[Demo], tmp_path: Path
) -> None:
    demo = demos[1]
    export = _copy_export(demo, tmp_path)
    manifest = json.loads((export / MANIFEST_NAME).read_text())
    name = manifest["segments"][1]["file"]
    data = bytearray((export / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (export / name).write_bytes(bytes(data))
    with pytest.raises(JobRefused) as caught:
        run_job(spark, [demos[0].input(), demo.input(export)], tmp_path / "out")
    assert caught.value.deployment == demo.name and caught.value.segment == name
    assert name in str(caught.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("run-*"))


def test_a_removed_segment_stops_the_job_naming_it(
    spark: Any, demos: list[Demo], tmp_path: Path
) -> None:
    demo = demos[2]
    export = _copy_export(demo, tmp_path)
    manifest = json.loads((export / MANIFEST_NAME).read_text())
    name = manifest["segments"][0]["file"]
    (export / name).unlink()
    with pytest.raises(JobRefused) as caught:
        run_job(spark, [demo.input(export)], tmp_path / "out")
    assert caught.value.segment == name and "missing" in caught.value.reason
    # A middle segment removed with its manifest entry: the one after the gap is named.
    demo = demos[0]  # the city: several segments
    export = _copy_export(demo, tmp_path / "gap")
    manifest = json.loads((export / MANIFEST_NAME).read_text())
    assert len(manifest["segments"]) >= 3
    removed = manifest["segments"].pop(1)
    (export / removed["file"]).unlink()
    (export / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(JobRefused) as caught:
        run_job(spark, [demo.input(export)], tmp_path / "out")
    assert caught.value.segment == manifest["segments"][1]["file"]
    assert "missing" in caught.value.reason


def _content(spark: Any, run_dir: Path) -> dict[str, list[tuple]]:
    return {
        name: sorted(tuple(r) for r in frame.collect())
        for name, frame in read_run(spark, run_dir).items()
    }


def test_a_rerun_after_a_lost_task_writes_the_same_output(
    spark: Any, run: Any, demos: list[Demo], drill: Path, tmp_path: Path
) -> None:
    drill.write_text("fail once")
    again = run_job(spark, [d.input() for d in demos], tmp_path / "out", compare=False)
    assert not drill.exists()  # a task failed, and was run again
    assert again.run_dir != run.run_dir
    assert _content(spark, again.run_dir) == _content(spark, run.run_dir)
    assert not list((tmp_path / "out").glob(".run-*"))  # no partial run left behind
