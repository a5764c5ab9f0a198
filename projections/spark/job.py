"""The monthly rebuild on Apache Spark, from sealed exports of one or many deployments.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit projections/spark/job.py --out OUT \\
        --deployment name=杭州,export=/x/hz,key-file=/k/hz.key,public-key=BASE64[,database=URL]

(the driver and the workers run the project's interpreter, where the project is installed;
on a cluster, the same environment on every node), or `ledger rebuild --engine spark --export
DIR --out OUT [--master URL]` for the deployment the settings name. Steps:

1. Every deployment's export is verified first with the project's own offline check
   (projections/audit/export.py verify_export), one task per deployment: a tampered, missing
   or removed segment stops the job, naming the deployment and the segment.
2. The segments are read as one DataFrame. Each event's recorded time as the projector counts
   it (a running maximum over the log) is computed per segment in parallel: a window over the
   segment, seeded with the maximum of the segments before it (a few numbers on the driver).
3. The events are partitioned by (deployment, stream), sorted by version, and folded in
   mapInPandas with the projector's own decoder and handlers (projections/spark/fold.py), each
   deployment's payloads opened with its own key (passed in the task closure, never written).
4. Spark's group-bys and windows then sum what monthly reconciliation compares: ledger_sums
   (per organisation, account, month or year, earmarked/general, as fill() does), the sums as
   known at each month's end (ledger_sums_known) and membership counts per organisation at
   each month's end (membership_counts, with the roll summary's rule).
5. The outputs are written as Parquet into a temporary directory and renamed into place
   (OUT/run-ID) only once all are written: a run is there whole or not at all, and a re-run
   after a lost executor writes the same rows.
6. Each deployment given a database is compared, table by table, with its live read models
   (projections/reconciliation/compare.py compare_rows), as `ledger rebuild --check` does.

Month ends are midnight in China Standard Time (UTC+8), the deployments' own calendar.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from projections.audit.export import ExportDamaged, read_manifest, verify_export
from projections.read_models.projector import HANDLERS
from projections.read_models.schema import LIVE, TABLES_BY_NAME, Table
from projections.reconciliation.compare import Comparison, compare_rows, live_rows
from projections.spark.fold import FOLDED_TOPICS, OUTPUT_TABLES, fold_rows

# A drill for the re-run test and for operators: the first task that finds this file removes
# it and fails, as a task on a lost executor does; Spark runs the task again.
FAIL_ONCE_ENV = "LEDGER_SPARK_FAIL_ONCE"
CST_US = 8 * 3600 * 1_000_000  # China Standard Time, UTC+8, in microseconds
RUN_FILE = "run.json"
LATEST_FILE = "LATEST"
OUT_ROWS_PER_BATCH = 10_000
SUM_TABLES = ("ledger_sums", "ledger_sums_known", "membership_counts")


class JobRefused(RuntimeError):
    """The job stopped before computing anything: an export failed its verification."""

    def __init__(self, deployment: str, segment: str | None, reason: str) -> None:
        where = f", segment {segment}" if segment else ""
        super().__init__(f"deployment {deployment}{where}: {reason}")
        self.deployment = deployment
        self.segment = segment
        self.reason = reason


@dataclass(frozen=True)
class DeploymentInput:
    """One deployment given to the job. The key opens its payloads inside the job only."""

    name: str
    export: Path
    master_key: bytes = field(repr=False)
    public_keys: frozenset[str]
    database_url: str | None = None


@dataclass
class JobResult:
    run_dir: Path
    events: int
    seconds: float
    verified: dict[str, Any]
    comparisons: dict[str, Comparison]
    live_positions: dict[str, int | None]

    @property
    def equal(self) -> bool:
        return all(c.equal for c in self.comparisons.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": str(self.run_dir),
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "spark_rebuild_events_per_s": round(self.events / self.seconds) if self.seconds else 0,
            "verified": self.verified,
            "live_positions": self.live_positions,
            "equal": self.equal,
            "comparisons": {name: c.as_dict() for name, c in self.comparisons.items()},
        }


# --- the Spark session ----------------------------------------------------------------------


def spark_session(master: str = "local[2]", app_name: str = "union-ledger-rebuild") -> Any:
    """A session whose Python workers run this interpreter (PYSPARK_PYTHON), so that they
    import the project exactly as the driver does."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "5000")
        .getOrCreate()
    )


def _spark_type(kind: str) -> str:
    return "string" if kind == "text" else "bigint"


def _ddl(table: Table, names: tuple[str, ...]) -> str:
    kinds = dict(table.columns)
    return ", ".join(f"{n} {_spark_type(kinds[n])}" for n in names)


# --- 1. verification ------------------------------------------------------------------------


def _verify_one(item: tuple[str, str, list[str]]) -> tuple[str, str | None, str, dict[str, Any]]:
    name, export, keys = item
    try:
        report = verify_export(Path(export), set(keys))
    except ExportDamaged as exc:
        return name, exc.segment or "", exc.reason, {}
    return name, None, "", report


def verify_all(spark: Any, deployments: list[DeploymentInput]) -> dict[str, Any]:
    """verify_export of every deployment, one task each; JobRefused names the first failure."""
    items = [(d.name, str(d.export), sorted(d.public_keys)) for d in deployments]
    results = spark.sparkContext.parallelize(items, max(1, len(items))).map(_verify_one).collect()
    reports = {}
    for name, segment, reason, report in sorted(results):
        if segment is not None:
            raise JobRefused(name, segment or None, reason)
        if report["starts_after"] != 0:
            raise JobRefused(name, None, "the export does not start at the first event")
        reports[name] = report
    return reports


# --- 2. the events and their recorded times -------------------------------------------------


def _events(spark: Any, deployments: list[DeploymentInput]) -> tuple[Any, int]:
    from pyspark.sql import functions as F

    frames = []
    events = 0
    for d in deployments:
        manifest = read_manifest(d.export)
        assert manifest is not None  # verified
        segments = manifest["segments"]
        events += sum(int(s["rows"]) for s in segments)
        if not segments:
            continue
        paths = [str(d.export / s["file"]) for s in segments]
        frame = (
            spark.read.parquet(*paths)
            .withColumn("deployment", F.lit(d.name))
            .withColumn("segment", F.regexp_extract(F.input_file_name(), r"([^/]+)$", 1))
        )
        frames.append(frame)
    if not frames:
        raise JobRefused(",".join(d.name for d in deployments), None, "the exports hold no events")
    df = frames[0]
    for frame in frames[1:]:
        df = df.unionByName(frame)
    return df, events


def _with_recorded_times(spark: Any, df: Any, deployments: list[DeploymentInput]) -> Any:
    """Adds recorded_us (the export's recorded_at) and at_us: the running maximum of the
    recorded times of the events a read model uses, up to each event, in log order (the
    projector's `recorded_at_us`). Per segment in parallel, seeded from the segments before."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    handled = list(HANDLERS)
    df = df.withColumn("recorded_us", F.unix_micros("recorded_at"))
    counted = F.when(F.col("topic").isin(handled), F.col("recorded_us"))
    df = df.withColumn("counted_us", counted)
    maxima = {
        (r["deployment"], r["segment"]): r["m"]
        for r in df.groupBy("deployment", "segment").agg(F.max("counted_us").alias("m")).collect()
    }
    seeds = []
    for d in deployments:
        manifest = read_manifest(d.export)
        assert manifest is not None
        running = 0
        for s in manifest["segments"]:
            seeds.append((d.name, s["file"], running))
            m = maxima.get((d.name, s["file"]))
            if m is not None and m > running:
                running = m
    seed_df = spark.createDataFrame(seeds, "deployment string, segment string, seed bigint")
    window = (
        Window.partitionBy("deployment", "segment")
        .orderBy("position")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return df.join(F.broadcast(seed_df), ["deployment", "segment"]).withColumn(
        "at_us", F.greatest(F.col("seed"), F.max("counted_us").over(window))
    )


# --- 3. the fold ----------------------------------------------------------------------------


def _fold_partition(keys: dict[str, bytes]) -> Any:
    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        drill = os.environ.get(FAIL_ONCE_ENV)
        if drill:
            try:
                os.remove(drill)
            except FileNotFoundError:
                pass
            else:
                raise RuntimeError(f"drill: a task failed as on a lost executor ({drill})")
        rows = (
            (dep, int(pos), stream, int(ver), topic, bytes(payload), int(rec), int(at))
            for frame in batches
            for dep, pos, stream, ver, topic, payload, rec, at in frame.itertuples(
                index=False, name=None
            )
        )
        out: list[tuple[str, str, str]] = []
        for item in fold_rows(keys, rows):
            out.append(item)
            if len(out) >= OUT_ROWS_PER_BATCH:
                yield pd.DataFrame(out, columns=["deployment", "table", "row"])
                out = []
        if out:
            yield pd.DataFrame(out, columns=["deployment", "table", "row"])

    return run


def fold(df: Any, keys: dict[str, bytes], partitions: int) -> Any:
    from pyspark.sql import functions as F

    columns = ["deployment", "position", "stream_id", "version", "topic", "payload"]
    return (
        df.filter(F.col("topic").isin(sorted(FOLDED_TOPICS)))
        .select(*columns, "recorded_us", "at_us")
        .repartition(partitions, "deployment", "stream_id")
        .sortWithinPartitions("deployment", "stream_id", "version")
        .mapInPandas(_fold_partition(keys), "deployment string, table string, row string")
    )


def tables_of(folded: Any) -> dict[str, Any]:
    """The folded rows as one DataFrame per read-model table (deployment first)."""
    from pyspark.sql import functions as F

    result = {}
    for name, names in OUTPUT_TABLES.items():
        parsed = F.from_json("row", _ddl(TABLES_BY_NAME[name], names))
        result[name] = (
            folded.filter(F.col("table") == name)
            .select("deployment", parsed.alias("r"))
            .select("deployment", *[F.col(f"r.{n}").alias(n) for n in names])
        )
    return result


# --- 4. sums by Spark -----------------------------------------------------------------------


def ledger_sums(lines: Any) -> Any:
    """ledger_sums rows from the lines, as projections/read_models/ledger_sums.fill sums them:
    per organisation, account, earmarked and month (months 1, period YYYYMM) or year (12,
    YYYY01), with the earliest and latest recorded time of the lines summed."""
    from pyspark.sql import functions as F

    frames = []
    for months, period in (
        (1, F.floor(F.col("effective_on") / 100)),
        (12, F.floor(F.col("effective_on") / 10_000) * 100 + 1),
    ):
        frames.append(
            lines.groupBy(
                "deployment",
                "organization_code",
                F.lit(months).cast("bigint").alias("months"),
                period.cast("bigint").alias("period"),
                "account_code",
                "earmarked",
            ).agg(
                F.sum("debit_fen").alias("debit_fen"),
                F.sum("credit_fen").alias("credit_fen"),
                F.min("recorded_at_us").alias("recorded_from_us"),
                F.max("recorded_at_us").alias("recorded_to_us"),
            )
        )
    return frames[0].unionByName(frames[1])


def _cst_month(us_column: Any) -> Any:
    """YYYYMM of a recorded time (microseconds, UTC) in China Standard Time."""
    from pyspark.sql import functions as F

    moment = F.timestamp_micros(us_column + F.lit(CST_US))
    return (F.year(moment) * 100 + F.month(moment)).cast("bigint")


def ledger_sums_known(lines: Any) -> Any:
    """分录汇总 as known at each month's end: per organisation, account, earmarked and month
    of effective dates (period YYYYMM), the sums of the lines recorded by the end of month
    known_through (YYYYMM, China time). A row for every month in which those sums changed;
    between two rows the earlier holds."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = ["deployment", "organization_code", "period", "account_code", "earmarked"]
    per_month = lines.groupBy(
        "deployment",
        "organization_code",
        F.floor(F.col("effective_on") / 100).cast("bigint").alias("period"),
        "account_code",
        "earmarked",
        _cst_month(F.col("recorded_at_us")).alias("known_through"),
    ).agg(F.sum("debit_fen").alias("d"), F.sum("credit_fen").alias("c"))
    window = (
        Window.partitionBy(*keys)
        .orderBy("known_through")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return per_month.select(
        *keys,
        "known_through",
        F.sum("d").over(window).alias("debit_fen"),
        F.sum("c").over(window).alias("credit_fen"),
    )


def month_end(month: int) -> tuple[int, int]:
    """(as-of day YYYYMMDD, known-at microseconds UTC) of a month's end, China time."""
    year, m = divmod(month, 100)
    first_next = datetime.date(year + (m == 12), m % 12 + 1, 1)
    last = first_next - datetime.timedelta(days=1)
    midnight = datetime.datetime.combine(first_next, datetime.time(), tzinfo=datetime.UTC)
    k_us = int(midnight.timestamp()) * 1_000_000 - CST_US - 1
    return last.year * 10_000 + last.month * 100 + last.day, k_us


def on_roll(spans: Any, details: Any, points: Any) -> Any:
    """Each span on the roll at each point (columns d: as-of day, k_us: known at), with the
    member's details as known at k: the roll summary's rule (projections/read_models/rolls.py
    _ON_ROLL and _DETAILS_KNOWN), as Spark conditions."""
    from pyspark.sql import functions as F

    s, d, p = spans.alias("s"), details.alias("dt"), points.alias("p")
    rolled = s.crossJoin(F.broadcast(p)).where(
        (F.col("s.opened_at_us") <= F.col("p.k_us"))
        & (F.col("s.valid_from") <= F.col("p.d"))
        & (
            F.col("s.closed_at_us").isNull()
            | (F.col("s.closed_at_us") > F.col("p.k_us"))
            | (F.col("s.valid_to") > F.col("p.d"))
        )
    )
    return rolled.join(
        d,
        (F.col("dt.deployment") == F.col("s.deployment"))
        & (F.col("dt.member_id") == F.col("s.member_id"))
        & (F.col("dt.recorded_at_us") <= F.col("p.k_us"))
        & (
            F.col("dt.superseded_at_us").isNull() | (F.col("dt.superseded_at_us") > F.col("p.k_us"))
        ),
    )


def member_figures() -> list[Any]:
    """The roll summary's counts over rows of on_roll()."""
    from pyspark.sql import functions as F

    return [
        F.count(F.lit(1)).alias("members"),
        F.sum(F.when(F.col("s.status") == "retained", 1).otherwise(0)).alias("retained"),
        F.sum(F.when(F.col("s.sex") == "female", 1).otherwise(0)).alias("women"),
        F.sum("dt.migrant_worker").alias("migrant_workers"),
        F.sum("dt.new_employment_form").alias("new_employment_form"),
    ]


def membership_counts(spark: Any, spans: Any, details: Any) -> Any:
    """Per deployment, organisation and month (YYYYMM): the roll summary's counts on the
    month's last day as known at its end, for every month from the first recorded span to the
    last recorded change."""
    from pyspark.sql import functions as F

    bounds = spans.agg(
        F.min("opened_at_us").alias("first_us"),
        F.max(F.greatest("opened_at_us", F.coalesce("closed_at_us", "opened_at_us"))).alias(
            "last_us"
        ),
    ).collect()[0]
    if bounds["first_us"] is None:
        return spark.createDataFrame(
            [],
            "deployment string, organization_code string, month bigint, members bigint,"
            " retained bigint, women bigint, migrant_workers bigint,"
            " new_employment_form bigint",
        )
    # Before the first span was recorded every count is 0: the months start there.
    first, last = (
        int(m.year * 100 + m.month)
        for m in (
            datetime.datetime.fromtimestamp((int(bounds[b]) + CST_US) / 1e6, tz=datetime.UTC)
            for b in ("first_us", "last_us")
        )
    )
    months = []
    month = first
    while month <= last:
        months.append((month, *month_end(month)))
        year, m = divmod(month, 100)
        month = year * 100 + m + 1 if m < 12 else (year + 1) * 100 + 1
    points = spark.createDataFrame(months, "month bigint, d bigint, k_us bigint")
    return (
        on_roll(spans, details, points)
        .groupBy(
            F.col("s.deployment").alias("deployment"),
            F.col("s.organization_code").alias("organization_code"),
            F.col("p.month").alias("month"),
        )
        .agg(*member_figures())
    )


# --- 5. atomic output -----------------------------------------------------------------------


def write_run(out: Path, frames: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Writes every table under a temporary directory, then renames it to OUT/run-ID and
    points OUT/LATEST at it: a run is visible whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    run_id = (
        datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        + "-"
        + (secrets.token_hex(3))
    )
    partial = out / f".run-{run_id}.partial"
    final = out / f"run-{run_id}"
    try:
        for name, frame in frames.items():
            frame.write.mode("error").parquet(str(partial / name))
        meta = {**meta, "run": final.name, "tables": sorted(frames)}
        (partial / RUN_FILE).write_text(
            json.dumps(meta, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    latest = out / f".{LATEST_FILE}.tmp"
    latest.write_text(final.name + "\n", encoding="utf-8")
    os.replace(latest, out / LATEST_FILE)
    return final


def latest_run(out: Path) -> Path:
    """OUT/run-ID named by OUT/LATEST, or OUT itself when it is a run directory."""
    if (out / RUN_FILE).exists():
        return out
    pointer = out / LATEST_FILE
    if not pointer.exists():
        raise FileNotFoundError(f"{out} holds no run of the Spark rebuild")
    return out / pointer.read_text(encoding="utf-8").strip()


# --- 6. comparison with the live read models --------------------------------------------------


def compare_live(
    frames: dict[str, Any], deployment: DeploymentInput
) -> tuple[Comparison, int | None]:
    """The job's rows of one deployment against its live read models, table by table (the
    columns the job keeps), as `ledger rebuild --check` compares. Returns the comparison
    and the live read models' position."""
    from pyspark.sql import functions as F

    from storage.database import Store
    from storage.settings import Settings

    assert deployment.database_url is not None
    store = Store(Settings(database_url=deployment.database_url))
    result = Comparison()
    try:
        conn = store.connect()
        try:
            with store.snapshot(conn) as cur:
                cur.execute(
                    store.sql(f"SELECT position FROM {LIVE.table('position')} WHERE name = ?"),
                    ("position",),
                )
                row = cur.fetchone()
                position = None if row is None else int(row[0])
            with store.snapshot(conn):
                for name in (*OUTPUT_TABLES, "ledger_sums"):
                    table = TABLES_BY_NAME[name]
                    names = OUTPUT_TABLES.get(name, table.column_names)
                    rebuilt = (
                        frames[name]
                        .filter(F.col("deployment") == deployment.name)
                        .select(*names)
                        .orderBy(*table.key)
                        .toLocalIterator()
                    )
                    compare_rows(
                        result,
                        table,
                        names,
                        live_rows(store, conn, table, names),
                        (tuple(r) for r in rebuilt),
                    )
        finally:
            conn.close()
    finally:
        store.close()
    return result, position


# --- the whole job --------------------------------------------------------------------------


def run_job(
    spark: Any,
    deployments: list[DeploymentInput],
    out: Path,
    *,
    partitions: int | None = None,
    compare: bool = True,
) -> JobResult:
    if len({d.name for d in deployments}) != len(deployments):
        raise ValueError("each deployment needs a name of its own")
    started = time.perf_counter()
    verified = verify_all(spark, deployments)
    df, events = _events(spark, deployments)
    df = _with_recorded_times(spark, df, deployments)
    parts = partitions or max(2, spark.sparkContext.defaultParallelism * 2)
    folded = fold(df, {d.name: d.master_key for d in deployments}, parts).persist()
    try:
        frames = tables_of(folded)
        frames["ledger_sums"] = ledger_sums(frames["ledger_lines"])
        frames["ledger_sums_known"] = ledger_sums_known(frames["ledger_lines"])
        frames["membership_counts"] = membership_counts(
            spark, frames["roll_spans"], frames["member_details"]
        )
        meta = {
            "deployments": {
                d.name: {"export": str(d.export), "through": verified[d.name]["through"]}
                for d in deployments
            },
            "events": events,
            "month_ends": "China Standard Time (UTC+8)",
        }
        run_dir = write_run(out, frames, meta)
        seconds = time.perf_counter() - started
        comparisons: dict[str, Comparison] = {}
        positions: dict[str, int | None] = {}
        if compare:
            written = read_run(spark, run_dir)
            for d in deployments:
                if d.database_url is not None:
                    comparisons[d.name], positions[d.name] = compare_live(written, d)
    finally:
        folded.unpersist()
    return JobResult(run_dir, events, seconds, verified, comparisons, positions)


def read_run(spark: Any, run_dir: Path) -> dict[str, Any]:
    meta = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    return {name: spark.read.parquet(str(run_dir / name)) for name in meta["tables"]}


# --- spark-submit ---------------------------------------------------------------------------


def parse_deployment(text: str) -> DeploymentInput:
    """name=N,export=DIR,key-file=PATH,public-key=BASE64[,database=URL] (key=BASE64 instead
    of key-file is accepted, for tests; a file keeps the key out of the process list)."""
    fields = dict(part.split("=", 1) for part in text.split(",") if part)
    try:
        if "key-file" in fields:
            key_text = Path(fields["key-file"]).read_text(encoding="ascii").strip()
        else:
            key_text = fields["key"]
        return DeploymentInput(
            name=fields["name"],
            export=Path(fields["export"]),
            master_key=base64.b64decode(key_text, validate=True),
            public_keys=frozenset(fields["public-key"].replace(" ", ",").split("|")),
            database_url=fields.get("database"),
        )
    except KeyError as exc:
        raise ValueError(f"--deployment lacks {exc.args[0]}= ({text.split(',')[0]})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--deployment", action="append", required=True)
    parser.add_argument("--master", default=None, help="default: spark-submit's, else local[2]")
    parser.add_argument("--no-compare", action="store_true")
    args = parser.parse_args(argv)
    deployments = [parse_deployment(t) for t in args.deployment]
    spark = spark_session(args.master or os.environ.get("SPARK_MASTER", "local[2]"))
    try:
        result = run_job(spark, deployments, args.out, compare=not args.no_compare)
    except JobRefused as exc:
        print(f"spark rebuild refused: {exc}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(json.dumps(result.as_dict(), ensure_ascii=False, indent=1, default=str))
    return 0 if result.equal else 1


if __name__ == "__main__":  # spark-submit runs this file as a script
    sys.exit(main())
