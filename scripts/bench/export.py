"""A whole roll exported as XLSX and as CSV: time and peak memory growth.

Each export runs in a child process of its own (`python -m scripts.bench.export`), which opens
the store, reads its resident memory once the read models are open, writes the export through
the same code as the API's (the roll read a chunk at a time, masked for a token without the pii
flag, laid out as filed, written by projections/reports/documents.py) and reports the time and
its peak resident memory (VmHWM) less the memory it started the export with. A child of its own
keeps one export's peak from hiding behind another's, or behind the benchmark's own.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench.database import BenchStore
from scripts.bench.server import run_module
from scripts.bench.stats import per_s

EXPORT_TIMEOUT_S = 1800.0


def measure(store: BenchStore, code: str, as_of: str) -> dict[str, Any]:
    result: dict[str, Any] = {"organization_code": code, "as_of": as_of}
    for fmt in ("xlsx", "csv"):
        # Two connections in each of its pools: it reads alone, while the server beside it
        # (two HTTP processes and the projection, each with two pools sized for 64 clients,
        # scripts/bench/database.py) and this process hold most of PostgreSQL's 100. With
        # the server's size the export was once refused ("too many clients").
        env = {**os.environ, **store.environment(), "LEDGER_POSTGRES_POOL_SIZE": "2"}
        with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
            out = Path(tmp) / f"roll.{fmt}"
            stdout = run_module(
                "scripts.bench.export",
                code,
                as_of,
                fmt,
                str(out),
                env=env,
                timeout_s=EXPORT_TIMEOUT_S,
            )
            result[fmt] = json.loads(stdout.strip().splitlines()[-1])
    return result


def _export(code: str, as_of: str, fmt: str, out: Path) -> dict[str, Any]:
    from domain.privacy import mask
    from projections.read_models.models import ReadModels
    from projections.reports import layouts
    from projections.reports.documents import csv_chunks, write_xlsx
    from scripts.common import memory_mb
    from service.application import Ledger
    from storage.settings import Settings

    ledger = Ledger(Settings())
    read_models = ReadModels(ledger)
    try:
        read_models.catch_up()
        day = datetime.date.fromisoformat(as_of)
        before = memory_mb(field="VmRSS") or 0.0
        started = time.perf_counter()
        chunks = read_models.whole_roll(code, as_of=day, scope="self")
        header = [("编制单位", code), ("截至", as_of)]
        document = layouts.roll(header, (row for c in chunks for row in mask(c)), unmasked=False)
        if fmt == "xlsx":
            rows = write_xlsx(document, out)
        else:
            with out.open("wb") as sink:
                for chunk in csv_chunks(document):
                    sink.write(chunk)
            with out.open("rb") as written:
                rows = sum(1 for _ in written) - len(header) - 2  # title and headings
        seconds = time.perf_counter() - started
        peak = memory_mb() or 0.0
    finally:
        read_models.close()
        ledger.close()
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": per_s(rows, seconds),
        "bytes": out.stat().st_size,
        "peak_growth_mb": round(peak - before, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("code")
    parser.add_argument("as_of")
    parser.add_argument("format", choices=("xlsx", "csv"))
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    print(json.dumps(_export(args.code, args.as_of, args.format, args.out)))


if __name__ == "__main__":
    main()
