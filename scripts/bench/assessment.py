"""What the figures mean: each against its target, against its raw ceiling, and the rebuild
at province scale (10^7 events) extrapolated from the stores measured, labelled as such."""

from __future__ import annotations

from typing import Any

from scripts.bench.config import PROVINCE_EVENTS, PROVINCE_MEMBERS
from scripts.bench.stats import ratio

MIN_EVENTS_TO_EXTRAPOLATE = 100_000
MIN_EVENTS_FOR_MEMORY = 1_000_000

# Each figure against the raw ceiling that bounds it (baseline.py says why each one).
CEILINGS = {
    # The same HTTP stack storing one event-sized row per request durably, nothing else
    # (scripts/bench/floors.py); PostgreSQL only.
    "ingest_events_per_s": "durable_post_per_s",
    # The roster import writes with COPY (service/bulk_join.py); SQLite has none (null ratio).
    "import_members_per_s": "copy_rows_per_s",
    # The raw read-and-decode ceiling (rows fetched, payloads decrypted, decompressed and
    # parsed with the readers' codec): what a catch-up or rebuild does before writing anything.
    "catchup_events_per_s": "decode_rows_per_s",
    "rebuild_events_per_s": "decode_rows_per_s",
}
# The same figures against the other reads of the baseline: the rows alone, and the rows
# built into domain events by eventsourcing's mapper (the ceiling the first round reported).
OTHER_READ_CEILINGS = {
    "rebuild_vs_raw_read": ("rebuild_events_per_s", "raw_read_rows_per_s"),
    "rebuild_vs_domain_events": ("rebuild_events_per_s", "read_rows_per_s"),
    "catchup_vs_raw_read": ("catchup_events_per_s", "raw_read_rows_per_s"),
    "decode_ceiling_vs_raw_read": ("decode_rows_per_s", "raw_read_rows_per_s"),
    # The processor time of what every build must do, over the machine's cores
    # (scripts/bench/rebuild_floor.py); PostgreSQL on this machine only.
    "rebuild_vs_floor": ("rebuild_events_per_s", "rebuild_floor_events_per_s"),
}
# The performance issue's targets (2-core machine, fsync and synchronous_commit on).
TARGETS = {
    "ingest_events_per_s": (">=", 2_000),
    "ingest_ms_p99": ("<", 200),
    "import_members_per_s": (">=", 20_000),
    "catchup_events_per_s": (">=", 20_000),
    "rebuild_events_per_s": (">=", 50_000),
    "rebuild_rss_mb": ("<", 500),
    "statement_ms_p99": ("<", 100),
    "roll_page_ms_p99": ("<", 50),
    "lookup_ms_p99": ("<", 10),
    # A 100,000-member roll (the full size's imported union) exported whole.
    "export_xlsx_s": ("<", 10),
    "export_xlsx_mb": ("<", 100),
    "export_csv_s": ("<", 10),
    "export_csv_mb": ("<", 100),
}


def _province_load_estimate(details: dict[str, Any]) -> str:
    """How long loading a province through the ledger would take at this run's load rate."""
    rates = [
        load["events_per_s"]
        for load in details.get("load", {}).values()
        if load.get("events_per_s")
    ]
    if not rates:
        return "no load rate was measured in this run"
    hours = PROVINCE_EVENTS / max(rates) / 3600
    return (
        f"at the best load rate of this run ({max(rates):,.0f} events/s through the "
        f"ledger's commands) 10^7 events would take about {hours:,.1f} hours to load"
    )


def extrapolate_province(details: dict[str, Any]) -> dict[str, Any]:
    """Rebuild time and memory at 10^7 events from the measured sizes, labelled as such.

    Rate: that of the largest store measured, assumed constant with size. Memory: the largest
    store's peak plus what a build keeps from batch to batch per event (measured by building
    that store twice in one process: scripts/bench/rebuild_memory.py) times the events still
    to come, and only for a store of at least MIN_EVENTS_FOR_MEMORY events. A line fitted
    through resident memory against position over one build is not used: the build holds one
    batch of events at a time, so its memory follows what the batches hold (one county-year:
    110 MB in the months of joins, 137 MB in the months of business), and on a province of
    1.3 million events such a line, drawn across the step where its business begins, put
    10^7 events at 1,125 MB where two builds in one process kept 1.9 MB per million events.
    Its slope is still reported (build_rss_mb_per_million_events). Stores smaller than
    MIN_EVENTS_TO_EXTRAPOLATE (quick and smoke runs) give no estimate at all."""
    points = sorted(
        ((r["events"], r) for r in details.get("rebuild", {}).values()), key=lambda point: point[0]
    )
    result: dict[str, Any] = {
        "extrapolated": True,
        "events": PROVINCE_EVENTS,
        "members": PROVINCE_MEMBERS,
        "from_measured_events": [e for e, _ in points],
        "method": "rate: that of the largest store measured, assumed constant with size; "
        f"peak memory (from stores of {MIN_EVENTS_FOR_MEMORY:,} events or more): the "
        "largest store's peak plus the memory a build keeps per event from batch to batch "
        "(two builds of that store in one process; never below zero) times the events "
        "still to come",
        "rebuild_s": None,
        "rebuild_events_per_s": None,
        "rebuild_rss_mb": None,
        "loaded": False,
        "why_not_loaded": _province_load_estimate(details),
    }
    if not points or points[-1][0] < MIN_EVENTS_TO_EXTRAPOLATE:
        result["reason"] = (
            f"no store of at least {MIN_EVENTS_TO_EXTRAPOLATE:,} events was "
            "rebuilt in this run: too small to extrapolate to 10^7"
        )
        return result
    (e2, largest) = points[-1]
    rate = largest["build_events_per_s"]
    result["rebuild_events_per_s"] = rate
    result["rebuild_s"] = round(PROVINCE_EVENTS / rate, 1) if rate else None
    result["build_rss_mb_per_million_events"] = largest.get("build_rss_mb_per_million_events")
    growth = largest.get("retained_mb_per_million_events")
    result["retained_mb_per_million_events"] = growth
    if e2 < MIN_EVENTS_FOR_MEMORY:
        result["reason"] = (
            f"peak memory is not extrapolated from a store of {e2:,} events: "
            f"below {MIN_EVENTS_FOR_MEMORY:,} events the build's memory follows "
            "the content of its batches, not the length of the log (see the "
            "rss_curve of each rebuild)"
        )
    elif growth is None:
        result["reason"] = (
            "the memory a build keeps from batch to batch was not measured on the largest "
            "store (its two-pass build failed or was not run)"
        )
    else:
        result["rebuild_rss_mb"] = round(
            largest["peak_rss_mb"] + max(0.0, growth) * (PROVINCE_EVENTS - e2) / 1e6, 1
        )
    return result


def _verdict(key: str, value: float | None, source: str) -> dict[str, Any]:
    op, bound = TARGETS[key]
    met = None if value is None else value >= bound if op == ">=" else value < bound
    return {"target": f"{op} {bound}", "value": value, "met": met, "source": source}


def verdicts(figures: dict[str, Any], province: dict[str, Any]) -> dict[str, Any]:
    """Each target against the figure measured in this run, at this run's sizes; the rebuild
    targets (stated for 10^7 events) also against the labelled extrapolation."""
    result = {key: _verdict(key, figures.get(key), "measured") for key in TARGETS}
    for key in ("rebuild_events_per_s", "rebuild_rss_mb"):
        result[f"{key}_at_10m_events"] = _verdict(
            key, province.get(key), "extrapolated to 10^7 events (see sizes.province)"
        )
    return result


def ratios(figures: dict[str, Any]) -> dict[str, Any]:
    ceilings = figures["baseline"]
    result = {
        key: {"ceiling": ceiling, "ratio": ratio(figures.get(key), ceilings.get(ceiling))}
        for key, ceiling in CEILINGS.items()
    }
    result["rebuild_vs_decode_ceiling"] = result["rebuild_events_per_s"]
    for name, (figure, ceiling) in OTHER_READ_CEILINGS.items():
        value = ceilings.get(figure) if figure in ceilings else figures.get(figure)
        result[name] = {"ceiling": ceiling, "ratio": ratio(value, ceilings.get(ceiling))}
    result["ingest_events_per_s_vs_commit"] = {
        "ceiling": "commit_per_s",
        "ratio": ratio(figures.get("ingest_events_per_s"), ceilings.get("commit_per_s")),
    }
    return result
