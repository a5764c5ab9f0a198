"""One benchmark run from start to end, and the JSON it reports.

Order matters: the deployment is loaded first (through the ledger, in process), then the raw
ceilings are taken on the same server, then catch-up, then the HTTP measurements against a
`ledger serve` subprocess (ingest, roster import, reads), then the rebuild once the server has
stopped. A measurement that fails records its figures as null with the reason under
"unavailable"; nothing is ever filled in with a number that was not measured.
"""

from __future__ import annotations

import datetime
import itertools
import os
import platform
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from rich.progress import Progress

from scripts.bench import (
    baseline,
    export,
    floors,
    ingest,
    projection,
    province,
    queries,
    rebuild_floor,
    roster_import,
    serving,
    spark_rebuild,
)
from scripts.bench.assessment import extrapolate_province, ratios, verdicts
from scripts.bench.baseline import COPY_UNAVAILABLE
from scripts.bench.config import BenchConfig
from scripts.bench.database import BenchStore, bench_store, durability
from scripts.bench.dataset import DeploymentLoader
from scripts.bench.profiling import Profiler
from scripts.bench.server import mint_admin_token, running_server
from scripts.demo_data import DEMO_YEAR, build_plan
from service.application import Ledger

SEED = 1
HEADLINE_KEYS = (
    "ingest_events_per_s",
    "ingest_ms_p50",
    "ingest_ms_p99",
    "import_members_per_s",
    "catchup_events_per_s",
    "rebuild_events_per_s",
    "rebuild_rss_mb",
    "statement_ms_p99",
    "roll_page_ms_p99",
    "lookup_ms_p99",
    "export_xlsx_s",
    "export_xlsx_mb",
    "export_csv_s",
    "export_csv_mb",
)
# Beside the rebuild's: measured unless the configuration leaves the Spark rebuild out.
SPARK_KEYS = ("spark_rebuild_events_per_s_1core", "spark_rebuild_events_per_s_2cores")
BASELINE_KEYS = (
    "commit_per_s",
    "durable_post_per_s",
    "executemany_rows_per_s",
    "copy_rows_per_s",
    "raw_read_rows_per_s",
    "decode_rows_per_s",
    "read_rows_per_s",
)
# Measured after the rebuild, over the read models it built (scripts/bench/rebuild_floor.py).
FLOOR_KEYS = ("rebuild_floor_events_per_s",)
NOISE_NOTE = (
    "figures are only comparable between runs on a quiet machine; the CPU count and "
    "load average at the start of this run are under environment"
)
# The same application under each HTTP server, at the most ingest clients (serving.summary).
SERVING_KEYS = (
    "uvicorn_rps",
    "uvicorn_ms_p99",
    "uvicorn_trivial_rps",
    "granian_rps",
    "granian_ms_p99",
    "granian_trivial_rps",
)

Note = Callable[[str], None]


class Run:
    """The figures of one run as they come in, and why any of them is missing."""

    def __init__(
        self,
        config: BenchConfig,
        note: Note,
        progress: Progress | None,
        profiler: Profiler | None = None,
    ) -> None:
        self.config = config
        self.note = note
        self.progress = progress
        self.profiler = profiler
        self.figures: dict[str, Any] = dict.fromkeys(HEADLINE_KEYS)
        self.figures.update(dict.fromkeys(SPARK_KEYS))
        self.figures["ingest_by_clients"] = {}
        self.figures["baseline"] = dict.fromkeys(BASELINE_KEYS + FLOOR_KEYS)
        self.figures["serving"] = dict.fromkeys(SERVING_KEYS)
        self.details: dict[str, Any] = {}
        self.unavailable: dict[str, str] = {}

    def sampling(self, label: str) -> AbstractContextManager[None]:
        """py-spy samples of what runs meanwhile, with --profile (scripts/bench/profiling.py)."""
        return nullcontext() if self.profiler is None else self.profiler.sampling(label)

    def attempt(
        self, label: str, keys: tuple[str, ...], action: Callable[[], None], *, profile: bool = True
    ) -> None:
        """Runs one measurement; if it fails, its figures stay null and the reason is kept.
        profile=False: the action samples its parts itself (see sampling)."""
        self.note(f"bench: {label}")
        started = time.perf_counter()
        try:
            with self.sampling(label) if profile else nullcontext():
                action()
        except Exception as exc:  # a failed measurement must not lose the others
            reason = f"{label} failed: {type(exc).__name__}: {exc}"[:600]
            self.note(f"bench: {reason}")
            self.details.setdefault("tracebacks", {})[label] = traceback.format_exc()[-3000:]
            for key in keys:
                self.unavailable.setdefault(key, reason)
        self.details.setdefault("phase_seconds", {})[label] = round(
            time.perf_counter() - started, 3
        )


def _environment(store: BenchStore) -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "backend": store.backend,
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "durability": durability(store),
        "note": NOISE_NOTE,
    }


def _load(
    run: Run, store: BenchStore, ledger: Ledger, size: str, scale: float, months: int
) -> tuple[Any, DeploymentLoader]:
    plan = build_plan(size, scale, SEED)
    on_step = None
    if run.progress is not None:
        task = run.progress.add_task(f"loading {size} at scale {scale} (commands)", total=None)
        on_step = lambda steps: run.progress.advance(task, steps)  # noqa: E731
    loader = DeploymentLoader(
        ledger,
        plan,
        months=months,
        threads=run.config.loader_threads,
        max_s=run.config.load_max_s,
        on_step=on_step,
    )
    if run.progress is not None:
        run.progress.update(task, total=loader.steps_total)
    run.note(f"bench: loading {size} at scale {scale} ({loader.steps_total:,} commands)")
    report = loader.load()
    run.details.setdefault("load", {})[size] = report.as_dict()
    return plan, loader


def _sizes(plan: Any, loader: DeploymentLoader, config: BenchConfig) -> dict[str, Any]:
    return {
        "deployment": {
            "size": plan.size,
            "scale": plan.scale,
            "seed": SEED,
            "organisations": loader.report.organizations,
            "members": loader.report.members,
            "months_of_business": config.months,
            "events": loader.report.events,
        },
        "statement_subtree_organizations": loader.report.organizations,
        "import_rows": config.import_rows,
        "ingest_requests_per_client_count": config.ingest_requests,
        "ingest_clients": list(config.ingest_clients),
        "query_samples": config.query_samples,
    }


def _measure_http(
    run: Run, store: BenchStore, ledger: Ledger, plan: Any, loader: DeploymentLoader
) -> None:
    config, figures = run.config, run.figures
    base_codes = sorted(code for code, people in loader.members_by_org.items() if people)
    root = plan.organizations[0]
    token = mint_admin_token(ledger)
    imported: list[Any] = []
    with running_server(store, token, config.server_workers) as server:
        target = ingest.IngestTarget(base_codes, itertools.count())

        def ingest_all() -> None:
            # The server has just started: its first pass over the unions is not the rate
            # it sustains (ingest.warm_up); kept apart, as what a restart costs.
            with run.sampling("ingest over HTTP, warm-up"):
                warm = ingest.warm_up(
                    server,
                    target,
                    clients=max(config.ingest_clients),
                    per_union=config.ingest_warm_up_per_union,
                )
            run.details["ingest_warm_up"] = warm
            run.note(
                f"bench:   warm-up, {warm['requests']:,} requests: {warm['events_per_s']} "
                f"events/s, p99 {warm['ms_p99']} ms"
            )
            for clients in config.ingest_clients:
                with run.sampling(f"ingest over HTTP, {clients} clients"):
                    result = ingest.measure(
                        server,
                        target,
                        clients=clients,
                        requests=config.ingest_requests,
                        max_s=config.ingest_max_s,
                        head=ledger.head_position,
                    )
                figures["ingest_by_clients"][str(clients)] = result
                run.note(
                    f"bench:   {clients} clients: {result['events_per_s']} events/s, "
                    f"p99 {result['ms_p99']} ms"
                )
            top = figures["ingest_by_clients"][str(max(config.ingest_clients))]
            figures["ingest_events_per_s"] = top["events_per_s"]
            figures["ingest_ms_p50"] = top["ms_p50"]
            figures["ingest_ms_p99"] = top["ms_p99"]

        def import_roster() -> None:
            result, union = roster_import.measure(
                server,
                parent_code=root.code,
                region_code=root.region_code,
                rows=config.import_rows,
                timeout_s=config.import_timeout_s,
            )
            run.details["import"] = result
            figures["import_members_per_s"] = result["members_per_s"]
            imported.append(union)

        run.attempt(
            "ingest over HTTP",
            ("ingest_events_per_s", "ingest_ms_p50", "ingest_ms_p99"),
            ingest_all,
            profile=False,
        )
        run.attempt(
            "roster import over HTTP", ("import_members_per_s", "roll_page_ms_p99"), import_roster
        )

        def warm_up() -> None:
            run.details["reads_warm_up_s"] = round(queries.warm_up(server, root.code), 3)

        run.attempt(
            "server catch-up before reads",
            ("statement_ms_p99", "roll_page_ms_p99", "lookup_ms_p99"),
            warm_up,
        )

        def statement() -> None:
            result = queries.statement(
                server, root.code, samples=config.query_samples, max_s=config.query_max_s
            )
            run.details["statement"] = result
            figures["statement_ms_p99"] = result["ms_p99"]

        def roll() -> None:
            if not imported:
                raise RuntimeError("no imported union to page through (the import failed)")
            result = queries.roll_page(
                server,
                imported[0].code,
                config.import_rows,
                samples=config.query_samples,
                max_s=config.query_max_s,
            )
            run.details["roll_page"] = result
            figures["roll_page_ms_p99"] = result["ms_p99"]

        def lookup() -> None:
            known = [p.id_number for ps in loader.members_by_org.values() for p in ps]
            if imported:
                known += imported[0].id_numbers
            result = queries.lookup(
                server, known, samples=config.query_samples, max_s=config.query_max_s
            )
            run.details["lookup"] = result
            figures["lookup_ms_p99"] = result["ms_p99"]

        def export_roll() -> None:
            if not imported:
                raise RuntimeError("no imported union to export (the import failed)")
            result = export.measure(store, imported[0].code, f"{DEMO_YEAR}-12-31")
            run.details["roll_export"] = result
            for fmt in ("xlsx", "csv"):
                figures[f"export_{fmt}_s"] = result[fmt]["seconds"]
                figures[f"export_{fmt}_mb"] = result[fmt]["peak_growth_mb"]
            run.note(
                f"bench:   roll export of {result['xlsx']['rows']:,} members: xlsx "
                f"{result['xlsx']['seconds']} s +{result['xlsx']['peak_growth_mb']} MB, csv "
                f"{result['csv']['seconds']} s +{result['csv']['peak_growth_mb']} MB"
            )

        run.attempt("statement latency", ("statement_ms_p99",), statement)
        run.attempt("roll page latency", ("roll_page_ms_p99",), roll)
        run.attempt("lookup latency", ("lookup_ms_p99",), lookup)
        run.attempt(
            "roll export",
            ("export_xlsx_s", "export_xlsx_mb", "export_csv_s", "export_csv_mb"),
            export_roll,
        )


def _compare_servers(run: Run, store: BenchStore, ledger: Ledger, loader: DeploymentLoader) -> None:
    """uvicorn and granian, each with its process manager and the projection process beside
    it, serving the same application on the loaded store in turns (scripts/bench/serving.py):
    ingest at the most clients, then a trivial endpoint (GET /healthz), the floor of a
    request's cost under each server."""
    config = run.config
    designs = tuple(
        serving.design(server, config.server_workers) for server in ("uvicorn", "granian")
    )
    missing = [d for d in designs if not serving.available(d)]
    for name in missing:
        server = serving.server_of(name)
        for key in SERVING_KEYS:
            if key.startswith(server):
                run.unavailable[f"serving.{key}"] = f"{server} is not installed (test extra)"
    base_codes = sorted(code for code, people in loader.members_by_org.items() if people)
    # Identity numbers apart from the ingest measurement's: every join is a new person.
    target = ingest.IngestTarget(base_codes, itertools.count(10**6))
    rows = serving.measure_designs(
        store,
        mint_admin_token(ledger),
        target,
        tuple(d for d in designs if d not in missing),
        clients=(max(config.ingest_clients),),
        seconds=config.serving_s,
        rounds=config.serving_rounds,
        warm_up_per_union=config.ingest_warm_up_per_union,
        note=lambda row: run.note(
            f"bench:   {row['design']}, {row['load']}: "
            f"{row.get('events_per_s') or row.get('requests_per_s')}/s, p99 {row['ms_p99']} ms"
        ),
    )
    run.details["serving"] = rows
    found = serving.summary(rows, max(config.ingest_clients))
    run.figures["serving"].update({k: v for k, v in found.items() if k in SERVING_KEYS})
    for key in SERVING_KEYS:
        if run.figures["serving"][key] is None:
            run.unavailable.setdefault(
                f"serving.{key}", "no request succeeded (details.serving has the statuses)"
            )


def _rebuild_at(
    run: Run, store: BenchStore, size: str, *, retained: bool = False
) -> dict[str, Any]:
    """`ledger rebuild` of the store; retained: then also the memory a build keeps from batch
    to batch (two builds in one process), which the extrapolation to 10^7 events uses."""
    result = projection.rebuild(store)
    run.details.setdefault("rebuild", {})[size] = result
    run.note(
        f"bench:   rebuild of {result['events']:,} events: "
        f"{result['build_events_per_s']} events/s, peak {result['peak_rss_mb']} MB"
    )
    if retained:
        try:
            result.update(projection.retained_memory(store))
        except Exception as exc:  # the rebuild's own figures stand without it
            result["retained_mb_per_million_events"] = None
            result["retained_unavailable"] = f"{type(exc).__name__}: {exc}"[:600]
        run.note(
            "bench:   kept from batch to batch: "
            f"{result['retained_mb_per_million_events']} MB per million events"
        )
    return result


def _extra_size(
    run: Run, backend: str, admin_url: str, workdir: Path, size: str, scale: float
) -> None:
    """A larger store: loaded, caught up and rebuilt; nothing else is measured on it."""
    sub = workdir / size
    sub.mkdir()
    with bench_store(backend, admin_url, sub) as store:
        ledger = Ledger(store.settings)
        try:
            _, loader = _load(run, store, ledger, size, scale, run.config.months)
            run.details.setdefault("catch_up", {})[size] = projection.catch_up(ledger)
        finally:
            ledger.close()
        _rebuild_at(run, store, size, retained=True)
        run.details.setdefault("sizes_measured", {})[size] = {
            "scale": scale,
            "organisations": loader.report.organizations,
            "members": loader.report.members,
            "events": loader.report.events,
        }


def _province_point(run: Run, backend: str, admin_url: str, workdir: Path, scale: float) -> None:
    """A province at a scale (--province-scale): loaded, caught up, its subtree reads timed
    (scripts/bench/province.py), on the still store and a roll's pages under writes, and
    rebuilt; its load rate beside the main deployment's.

    The rebuild is what gives the rebuild targets, stated for 10^7 events, a store large
    enough to extrapolate peak memory from (assessment.MIN_EVENTS_FOR_MEMORY: a province at
    scale 0.05 has over a million events) without loading a city for hours."""
    sub = workdir / "province-point"
    sub.mkdir()
    with bench_store(backend, admin_url, sub) as store:
        ledger = Ledger(store.settings)
        try:
            plan, loader = _load(run, store, ledger, "province", scale, run.config.months)
            reads = province.subtree_reads(
                ledger,
                plan.root_code,
                samples=run.config.query_samples,
                max_s=run.config.query_max_s,
            )
            reads["roll_page_under_writes"] = province.roll_page_under_writes(
                ledger,
                plan.root_code,
                {**os.environ, **store.environment()},
                sub / "province-writes.log",
                samples=run.config.query_samples,
                max_s=run.config.query_max_s,
            )
        finally:
            ledger.close()
        rebuilt = _rebuild_at(run, store, "province", retained=True)
    rate = loader.report.as_dict()["commands_per_s"]
    main_rate = run.details.get("load", {}).get(run.config.plan_size, {}).get("commands_per_s")
    run.figures["province"] = {
        "scale": scale,
        "organisations": loader.report.organizations,
        "members": loader.report.members,
        "events": loader.report.events,
        "statement_ms_p99": reads["statement"]["ms_p99"],
        "roll_page_ms_p99": reads["roll_page"]["ms_p99"],
        "roll_summary_ms_p99": reads["roll_summary"]["ms_p99"],
        "roll_page_under_writes_ms_p99": reads["roll_page_under_writes"]["ms_p99"],
        "load_commands_per_s": rate,
        f"{run.config.plan_size}_load_commands_per_s": main_rate,
        "load_rate_ratio": round(rate / main_rate, 3) if rate and main_rate else None,
        "rebuild_events": rebuilt["events"],
        "rebuild_events_per_s": rebuilt["build_events_per_s"],
        "rebuild_rss_mb": rebuilt["peak_rss_mb"],
        "rebuild_retained_mb_per_million_events": rebuilt["retained_mb_per_million_events"],
    }
    run.details["province_point"] = reads


def run_bench(
    config: BenchConfig,
    admin_url: str,
    note: Note = lambda s: None,
    workdir: Path | None = None,
    progress: Progress | None = None,
    backend: str = "postgres",
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    run = Run(config, note, progress, Profiler(profile_dir) if profile_dir else None)
    started_at = datetime.datetime.now(datetime.UTC)
    started = time.perf_counter()
    figures = run.figures
    sizes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-", dir=workdir) as tmp:
        with bench_store(backend, admin_url, Path(tmp)) as store:
            environment = _environment(store)
            run.details["database"] = store.database
            ledger = Ledger(store.settings)
            try:
                plan, loader = _load(
                    run, store, ledger, config.plan_size, config.plan_scale, config.months
                )
                sizes = _sizes(plan, loader, config)

                def take_baseline() -> None:
                    result = baseline.measure(
                        ledger,
                        store.dialect(),
                        commits=config.baseline_commits,
                        rows=config.baseline_rows,
                        max_s=config.baseline_max_s,
                    )
                    run.details["baseline"] = result.pop("details")
                    figures["baseline"].update(result)
                    if result["copy_rows_per_s"] is None:
                        run.unavailable["baseline.copy_rows_per_s"] = COPY_UNAVAILABLE
                    if backend != "postgres":
                        run.unavailable["baseline.durable_post_per_s"] = floors.DURABLE_UNAVAILABLE
                        return
                    floor = floors.durable_http_floor(
                        admin_url=admin_url,
                        clients=max(config.ingest_clients),
                        requests=config.durable_post_requests,
                    )
                    run.details["baseline"]["durable_post"] = floor
                    figures["baseline"]["durable_post_per_s"] = floor["events_per_s"]

                def catch_up() -> None:
                    result = projection.catch_up(ledger)
                    run.details.setdefault("catch_up", {})[config.plan_size] = result
                    figures["catchup_events_per_s"] = result["events_per_s"]

                run.attempt(
                    "raw database baseline",
                    tuple(f"baseline.{k}" for k in BASELINE_KEYS),
                    take_baseline,
                )
                run.attempt("catch-up", ("catchup_events_per_s",), catch_up)
                # A first rebuild of the loaded deployment alone: a second store size for the
                # memory-growth line, at the cost of one more county-sized rebuild.
                run.attempt(
                    "rebuild of the loaded deployment",
                    (),
                    lambda: _rebuild_at(run, store, f"{config.plan_size} (as loaded)"),
                )
                _measure_http(run, store, ledger, plan, loader)
                run.attempt(
                    "HTTP servers side by side",
                    tuple(f"serving.{k}" for k in SERVING_KEYS),
                    lambda: _compare_servers(run, store, ledger, loader),
                    profile=False,
                )
            finally:
                ledger.close()

            def rebuild() -> None:
                result = _rebuild_at(run, store, f"{config.plan_size} (after HTTP writes)")
                figures["rebuild_events_per_s"] = result["build_events_per_s"]
                figures["rebuild_rss_mb"] = result["peak_rss_mb"]

            run.attempt(
                "rebuild (ledger rebuild subprocess)",
                ("rebuild_events_per_s", "rebuild_rss_mb"),
                rebuild,
            )

            def floor_of_rebuild() -> None:
                built = Ledger(store.settings)
                try:
                    result = rebuild_floor.measure(built)
                finally:
                    built.close()
                run.details["rebuild_floor"] = result
                figures["baseline"]["rebuild_floor_events_per_s"] = result[
                    "rebuild_floor_events_per_s"
                ]
                if "unavailable" in result:
                    run.unavailable["baseline.rebuild_floor_events_per_s"] = result["unavailable"]

            run.attempt(
                "the rebuild's machine floor (over the read models it built)",
                tuple(f"baseline.{k}" for k in FLOOR_KEYS),
                floor_of_rebuild,
            )

            def rebuild_on_spark() -> None:
                measured = spark_rebuild.measure(store)
                run.details["spark_rebuild"] = measured.pop("details")
                figures.update(measured)

            if config.spark_rebuild:
                run.attempt(
                    "Spark rebuild on 1 and 2 local cores (ledger rebuild --engine spark)",
                    SPARK_KEYS,
                    rebuild_on_spark,
                )
        for size, scale in config.extra_sizes:
            run.attempt(
                f"{size} store: load, catch-up, rebuild",
                (f"sizes.{size}",),
                lambda size=size, scale=scale: _extra_size(
                    run, backend, admin_url, Path(tmp), size, scale
                ),
            )
        if config.province_scale is not None:
            scale = config.province_scale
            run.attempt(
                f"province store at scale {scale}: load, subtree reads, rebuild",
                ("province",),
                lambda: _province_point(run, backend, admin_url, Path(tmp), scale),
            )
    province = extrapolate_province(run.details)
    figures["baseline"]["ratios"] = ratios(figures)
    for key in HEADLINE_KEYS:
        if figures[key] is None:
            run.unavailable.setdefault(key, "not measured in this run")
    return {
        **figures,
        "backend": backend,
        "targets": verdicts(figures, province),
        "sizes": {**sizes, "measured": run.details.get("sizes_measured", {}), "province": province},
        "unavailable": run.unavailable,
        "config": config.as_dict(),
        "environment": environment,
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started, 1),
        # A profiled run's figures are taken under py-spy: not comparable with others.
        "profiled": run.profiler is not None,
        "details": {
            **run.details,
            **({"profiles": run.profiler.summaries} if run.profiler is not None else {}),
        },
    }
