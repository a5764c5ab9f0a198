"""Roster import (会员名册导入): one CSV file of N new members into one fresh base union, by
POST /v1/members/imports. The union's roll is what the roll-page latency then pages through."""

from __future__ import annotations

import csv
import datetime
import io
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from scripts import synthetic
from scripts.bench.server import Server
from scripts.bench.stats import per_s
from scripts.demo_data import DEMO_YEAR

IMPORT_REGION = "650103"  # 乌鲁木齐市沙依巴克区: a range used by nothing else in the run
UNION_SERIAL = 900_000_001
HEADER = ("id_number", "name", "joined_on", "mobile", "migrant_worker", "new_employment_form")


@dataclass(frozen=True)
class ImportedUnion:
    code: str
    id_numbers: list[str]


def roster_csv(rows: int) -> tuple[bytes, list[str]]:
    """A UTF-8 CSV with a BOM, as Excel saves it, and the identity numbers in it."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    id_numbers = []
    for serial in range(rows):
        birth = datetime.date(1965, 1, 1) + datetime.timedelta(days=serial // 1000)
        id_number = synthetic.id_number(IMPORT_REGION, birth, serial % 1000)
        id_numbers.append(id_number)
        writer.writerow(
            [
                id_number,
                "导入会员",
                f"{DEMO_YEAR}-03-01",
                f"139{serial:08d}",
                "是" if serial % 4 == 0 else "否",
                "否",
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8"), id_numbers


def found_union(client: httpx.Client, parent_code: str, region_code: str) -> str:
    """A new base union for the imported roll, founded over HTTP like any other."""
    code = synthetic.union_code(region_code, UNION_SERIAL, base=True)
    body = {
        "code": code,
        "name": "压测导入基层工会",
        "level": "base",
        "parent_code": parent_code,
        "region_code": region_code,
        "founded_on": f"{DEMO_YEAR}-01-02",
        "employer_code": synthetic.employer_code(region_code, UNION_SERIAL),
        "employee_count": 120_000,
    }
    response = client.post(
        "/v1/organizations", json=body, headers={"Idempotency-Key": f"bench-{uuid.uuid4().hex}"}
    )
    if response.status_code != 201:
        raise RuntimeError(
            f"founding the import union: {response.status_code} {response.text[:300]}"
        )
    return code


def measure(
    server: Server, *, parent_code: str, region_code: str, rows: int, timeout_s: float
) -> tuple[dict[str, Any], ImportedUnion]:
    body, id_numbers = roster_csv(rows)
    with httpx.Client(
        base_url=server.base_url, headers=server.headers(), timeout=timeout_s
    ) as client:
        code = found_union(client, parent_code, region_code)
        started = time.perf_counter()
        response = client.post(
            "/v1/members/imports",
            data={"organization_code": code},
            files={"file": ("roster.csv", body, "text/csv")},
            headers={"Idempotency-Key": f"bench-import-{uuid.uuid4().hex}"},
        )
        seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"import answered {response.status_code}: {response.text[:300]}")
    report = response.json()
    accepted = int(report["rows_accepted"])
    result = {
        "rows": rows,
        "rows_accepted": accepted,
        "rows_rejected": int(report["rows_rejected"]),
        "rejected_examples": report["rejected"][:5],
        "file_bytes": len(body),
        "seconds": round(seconds, 3),
        "members_per_s": per_s(accepted, seconds),
    }
    return result, ImportedUnion(code, id_numbers)


def _found_root(ledger: Any, region_code: str) -> str:
    """A county root for a store that holds nothing else: the import's union hangs under it."""
    from service.commands import FoundOrganization

    code = synthetic.union_code(region_code, UNION_SERIAL - 1, base=False)
    ledger.execute(
        FoundOrganization(
            code=code,
            name="压测县总工会",
            level="county",
            parent_code=None,
            region_code=region_code,
            founded_on=f"{DEMO_YEAR - 1}-01-02",
        )
    )
    return code


def main(argv: list[str] | None = None) -> None:
    """The roster import alone, on a fresh store: `python -m scripts.bench.roster_import`.
    Prints one JSON line with import_members_per_s (what `ledger bench` measures, without
    the rest of the run)."""
    import argparse
    import json
    import tempfile
    from pathlib import Path

    from scripts.bench.database import DEFAULT_ADMIN_URL, bench_store
    from scripts.bench.server import mint_admin_token, running_server
    from service.application import Ledger

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_store(args.backend, args.admin_url, Path(tmp)) as store,
    ):
        ledger = Ledger(store.settings)
        try:
            root = _found_root(ledger, IMPORT_REGION)
            token = mint_admin_token(ledger)
        finally:
            ledger.close()
        with running_server(store, token, args.workers) as server:
            result, _ = measure(
                server, parent_code=root, region_code=IMPORT_REGION, rows=args.rows, timeout_s=600
            )
    result.pop("rejected_examples")
    print(json.dumps({"import_members_per_s": result["members_per_s"], **result}))


if __name__ == "__main__":
    main()
