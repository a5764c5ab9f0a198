"""The bench's province point times the reads over the root's whole subtree
(scripts/bench/province.py): every read answers, over every member of the province."""

from __future__ import annotations

from scripts.bench import province
from service.commands import JoinMember
from tests.service.scenario import found_tree, person


def test_subtree_reads_cover_the_province(ledger):
    tree = found_tree(ledger)
    for n in range(1, 8):
        org = (tree.base_a, tree.base_b, tree.base_c)[n % 3]
        ledger.execute(
            JoinMember(
                id_number=person(n), name=f"会员{n}", organization_code=org, joined_on="2025-03-01"
            )
        )
    reads = province.subtree_reads(ledger, tree.province, samples=3, max_s=30)
    assert reads["roll_members"] == 7
    for kind in ("statement", "roll_page", "roll_summary"):
        assert reads[kind]["samples"] == 3, kind
        assert reads[kind]["ms_p99"] > 0, kind
