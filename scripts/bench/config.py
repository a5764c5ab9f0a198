"""The sizes a benchmark run uses: full (the sizes of the performance issue), quick, smoke.

Sizes follow docs/domain.md "Sizes": a county has 700-2,500 organisations and 80,000-200,000
members; a city about 11 counties; a province about 10^5 organisations, 10^7 members and, with
a year of business, about 10^7 events. The deployment is the demo plan (scripts/demo_data.py)
at a scale; scale 0.7 of a county gives the ~700-organisation subtree the statement target names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The events a province-scale store holds: what the rebuild target is stated for.
PROVINCE_EVENTS = 10_000_000
PROVINCE_MEMBERS = 10_000_000
PROVINCE_ORGANISATIONS = 100_000


@dataclass(frozen=True)
class BenchConfig:
    name: str
    # The deployment loaded through the ledger: demo plan size and scale, months of business.
    plan_size: str = "county"
    plan_scale: float = 0.7
    months: int = 12
    loader_threads: int = 64
    load_max_s: float = 2 * 3600.0
    # Raw PostgreSQL ceilings.
    baseline_commits: int = 2_000
    baseline_rows: int = 200_000
    baseline_max_s: float = 20.0
    # The durable POST floor (scripts/bench/floors.py): the HTTP stack storing one row per
    # request, at the most ingest clients; PostgreSQL only.
    durable_post_requests: int = 12_000
    # `ledger serve --workers`: one process per core.
    server_workers: int = 2
    # HTTP ingest: clients, requests per client count, and a time bound per client count.
    ingest_clients: tuple[int, ...] = (1, 16, 64)
    ingest_requests: int = 6_000
    ingest_max_s: float = 60.0
    # Before the first measurement on a server just started (ingest.warm_up): requests per
    # base union, not counted.
    ingest_warm_up_per_union: int = 8
    # HTTP servers side by side (scripts/bench/serving.py: uvicorn, granian) on the loaded
    # store, at the most ingest clients: rounds (A B, then B A) and seconds per measurement.
    serving_rounds: int = 2
    serving_s: float = 10.0
    # Roster import: rows in one file, into one fresh base union (its roll is then paged).
    import_rows: int = 100_000
    import_timeout_s: float = 7_200.0
    # Read latencies: requests per kind (p99 needs at least 100).
    query_samples: int = 300
    query_max_s: float = 120.0
    # Larger stores whose load, catch-up and rebuild are measured too (sizes beyond the main
    # deployment); a size whose load would take too long is extrapolated instead, labelled.
    extra_sizes: tuple[tuple[str, float], ...] = field(default=())
    # The province point (`--province-scale`): a province at this scale, its load rate, its
    # subtree reads (scripts/bench/province.py) and its rebuild. None: not measured.
    province_scale: float | None = None
    # The Spark rebuild on 1 and 2 local cores (scripts/bench/spark_rebuild.py): off in the
    # smoke run, whose time bound two Spark sessions would not fit.
    spark_rebuild: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# A city at scale 1 is 11 counties (about 1.15 million members): hours to load on two cores.
FULL = BenchConfig(name="full", load_max_s=3 * 3600.0, extra_sizes=(("city", 1.0),))
QUICK = BenchConfig(
    name="quick",
    plan_scale=0.05,
    months=3,
    load_max_s=120.0,
    baseline_commits=500,
    baseline_rows=50_000,
    baseline_max_s=8.0,
    durable_post_requests=3_000,
    ingest_requests=1_500,
    ingest_max_s=15.0,
    serving_s=6.0,
    import_rows=3_000,
    import_timeout_s=240.0,
    query_samples=100,
    query_max_s=30.0,
)
# The smallest run that still exercises every measurement end to end (the test suite's).
SMOKE = BenchConfig(
    name="smoke",
    spark_rebuild=False,
    plan_scale=0.004,
    months=1,
    loader_threads=16,
    load_max_s=60.0,
    baseline_commits=50,
    baseline_rows=2_000,
    baseline_max_s=3.0,
    durable_post_requests=200,
    ingest_clients=(1, 4),
    ingest_requests=40,
    ingest_max_s=5.0,
    ingest_warm_up_per_union=1,
    serving_rounds=1,
    serving_s=2.0,
    import_rows=50,
    import_timeout_s=60.0,
    query_samples=20,
    query_max_s=10.0,
)
