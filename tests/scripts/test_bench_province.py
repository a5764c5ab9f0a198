"""The bench's province point times the reads over the root's whole subtree
(scripts/bench/province.py): every read answers, over every member of the province."""

from __future__ import annotations

import datetime
import os

from projections.read_models.models import ReadModels
from scripts.bench import province
from service.commands import JoinMember
from tests.service.scenario import found_tree, person


def _seven_members(ledger):
    tree = found_tree(ledger)
    for n in range(1, 8):
        org = (tree.base_a, tree.base_b, tree.base_c)[n % 3]
        ledger.execute(
            JoinMember(
                id_number=person(n), name=f"会员{n}", organization_code=org, joined_on="2025-03-01"
            )
        )
    return tree


def test_subtree_reads_cover_the_province(ledger):
    tree = _seven_members(ledger)
    reads = province.subtree_reads(ledger, tree.province, samples=3, max_s=30)
    assert reads["roll_members"] == 7
    for kind in ("statement", "roll_page", "roll_summary"):
        assert reads[kind]["samples"] == 3, kind
        assert reads[kind]["ms_p99"] > 0, kind


def test_roll_pages_under_writes_follow_the_joins_written_beside_them(backend, tmp_path):
    """A child process joins members and projects them while the pages are read; what it
    wrote is reported, and is on the province's roll afterwards."""
    ledger = backend.open()
    tree = _seven_members(ledger)
    settings = backend.settings
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")},
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_ENCRYPTION_KEY": settings.encryption_key or "",
        "LEDGER_KEY_FILE": str(settings.key_file),
        "LEDGER_AUDIT_KEY_FILE": str(settings.audit_key_file),
    }
    reads = province.roll_page_under_writes(
        ledger, tree.province, env, tmp_path / "writes.log", samples=5, max_s=30
    )
    assert reads["samples"] == 5 and reads["ms_p99"] > 0
    assert reads["joins"] >= 1 and reads["refused"] == 0, reads
    first, last = reads["positions"]
    assert last > first and reads["catch_ups_with_events"] >= 1
    read_models = ReadModels(ledger)
    try:
        read_models.catch_up()
        roll = read_models.roll(
            tree.province, as_of=datetime.date(2025, 12, 31), scope="subtree", page_size=1
        )
    finally:
        read_models.close()
    assert roll["total"] == 7 + reads["joins"]
