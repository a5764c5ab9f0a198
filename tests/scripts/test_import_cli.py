"""`ledger import members` as an operator runs it, on each store: a GBK roster saved by Excel
on a Chinese Windows machine, with a malformed row among good ones."""

from __future__ import annotations

import json

from tests.api.conftest import person
from tests.projections.test_commands import _run
from tests.service.scenario import COUNTY_REGION, found_tree


def test_import_members_reports_each_row_and_stores_the_good_ones(backend, tmp_path):
    ledger = backend.open()
    tree = found_tree(ledger)
    first, second = person(1, COUNTY_REGION), person(2, COUNTY_REGION)
    lines = [
        "身份证号,姓名,入会日期,手机号,农民工,新就业形态",
        f"{first},张三,2024-01-05,13812345678,是,否",
        f"{first[:-1]}0,李四,2024-01-05,,否,否",
        f"{second},王五,2024-13-01,,否,否",
        f"{person(3, COUNTY_REGION)},赵六,2024-01-06,,否,是",
    ]
    roster = tmp_path / "名册.csv"
    roster.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    report = tmp_path / "report.json"
    args = ["import", "members", str(roster), "--organization", tree.base_a]
    result = _run(backend, tmp_path, *args, "--report", str(report))
    assert result.returncode == 1, result.stderr
    assert "4 rows, 2 accepted, 2 rejected" in result.stdout
    assert "row 3" in result.stderr and "row 4" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "ledger: error: 2 of 4 rows refused"
    body = json.loads(report.read_text(encoding="utf-8"))
    assert [r["row"] for r in body["accepted"]] == [2, 5]
    assert [r["row"] for r in body["rejected"]] == [3, 4]
    assert first not in report.read_text(encoding="utf-8")  # masked
    assert ledger.find_member(first)["organization_code"] == tree.base_a

    unknown = _run(backend, tmp_path, "import", "members", str(roster), "--organization", "x")
    assert unknown.returncode == 1 and "no organisation" in unknown.stderr
