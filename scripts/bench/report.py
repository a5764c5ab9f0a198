"""The README's table: each headline figure beside its target and its raw ceiling."""

from __future__ import annotations

from typing import Any

ROWS = (
    ("ingest, 64 clients (events/s)", "ingest_events_per_s"),
    ("ingest p50 / p99 (ms)", ("ingest_ms_p50", "ingest_ms_p99")),
    ("roster import (members/s)", "import_members_per_s"),
    ("catch-up (events/s)", "catchup_events_per_s"),
    ("rebuild (events/s)", "rebuild_events_per_s"),
    ("rebuild peak memory (MB)", "rebuild_rss_mb"),
    ("statement p99 (ms)", "statement_ms_p99"),
    ("roll page p99 (ms)", "roll_page_ms_p99"),
    ("lookup p99 (ms)", "lookup_ms_p99"),
    ("roll export, XLSX: s / peak MB growth", ("export_xlsx_s", "export_xlsx_mb")),
    ("roll export, CSV: s / peak MB growth", ("export_csv_s", "export_csv_mb")),
)


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def _target(result: dict[str, Any], key: str) -> tuple[str, str]:
    verdict = result.get("targets", {}).get(key)
    if not verdict:
        return "", ""
    met = {True: "yes", False: "no", None: "n/a"}[verdict["met"]]
    at_10m = result.get("targets", {}).get(f"{key}_at_10m_events")
    if at_10m is not None and at_10m["value"] is None:
        met += "; at 10^7 events: not extrapolated (sizes.province.reason says why)"
    elif at_10m is not None:
        met += (
            f"; at 10^7 events, extrapolated: {_number(at_10m['value'])} "
            f"({ {True: 'yes', False: 'no', None: 'n/a'}[at_10m['met']] })"
        )
    return verdict["target"], met


def markdown_table(result: dict[str, Any]) -> str:
    baseline = result.get("baseline", {})
    ratios = baseline.get("ratios", {})
    lines = [
        "| figure | measured | target | met | ceiling (raw driver) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for label, key in ROWS:
        if isinstance(key, tuple):
            value = " / ".join(_number(result.get(k)) for k in key)
            target, met = _target(result, key[1])
            ceiling = ratio = ""
        else:
            value = _number(result.get(key))
            target, met = _target(result, key)
            entry = ratios.get(key)
            ceiling = (
                f"{entry['ceiling']} {_number(baseline.get(entry['ceiling']))}" if entry else ""
            )
            ratio = "" if not entry or entry["ratio"] is None else f"{entry['ratio']:.3f}"
        lines.append(f"| {label} | {value} | {target} | {met} | {ceiling} | {ratio} |")
    sizes = result.get("sizes", {}).get("deployment", {})
    env = result.get("environment", {})
    lines.append("")
    floor = ratios.get("rebuild_vs_floor")
    if floor and floor["ratio"] is not None:
        lines.append(
            "The rebuild's machine floor (the processor time every build must spend, over the "
            f"cores): {_number(baseline.get('rebuild_floor_events_per_s'))} events/s; the "
            f"rebuild ran at {floor['ratio']:.3f} of it."
        )
        lines.append("")
    lines.append(
        f"Run `{result.get('config', {}).get('name')}` of {result.get('started_at')}: "
        f"{sizes.get('size')} at scale {sizes.get('scale')} ({sizes.get('organisations')} "
        f"organisations, {sizes.get('members')} members, {sizes.get('events')} events loaded), "
        f"{env.get('cpu_count')} CPUs, load average {env.get('load_average_1_5_15')}, "
        f"{env.get('backend')} "
        + ", ".join(f"{k}={v}" for k, v in env.get("durability", {}).items())
        + "."
    )
    missing = result.get("unavailable") or {}
    for key, reason in missing.items():
        lines.append(f"- {key}: not measured: {reason}")
    return "\n".join(lines) + "\n"
