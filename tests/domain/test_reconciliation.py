"""The matching rules of month-end reconciliation, stated one by one, and a run's sign-off."""

from __future__ import annotations

import datetime
import uuid

import pytest

from domain.errors import InvalidStatus
from domain.reconciliation import Entry, match
from domain.reconciliation_runs import ReconciliationRun

D = datetime.date(2024, 1, 10)


def ours(key: str, day: datetime.date, fen: int, *refs: str) -> Entry:
    return Entry(key=key, day=day, amount_fen=fen, references=refs, shown={"key": key})


def line(row: int, day: datetime.date | None, fen: int, text: str = "") -> Entry:
    return Entry(key=f"row:{row}", day=day, amount_fen=fen, text=text, row=row, shown={"row": row})


def days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


def test_a_reference_wins_over_a_line_of_the_same_date_and_amount() -> None:
    result = match(
        [ours("a", D, 100, "v-a"), ours("b", D, 100, "v-b")], [line(2, D, 100, "v-b")], 5
    )
    assert [(m["rule"], m["ledger"]["key"]) for m in result.matches] == [("reference", "b")]
    assert [(d["kind"], d["ledger"]) for d in result.differences] == [
        ("missing_in_file", {"key": "a"})
    ]


def test_a_reference_with_another_amount_is_a_difference_not_a_match() -> None:
    result = match([ours("a", D, 100, "v-a")], [line(2, D, 90, "paid v-a")], 5)
    assert result.matches == []
    (difference,) = result.differences
    assert difference["kind"] == "amount_differs" and difference["row"] == 2
    assert "0.10" in difference["reason"]


def test_date_and_amount_before_the_window_and_the_window_takes_the_nearest() -> None:
    ledger = [ours("far", D - days(4), 100), ours("near", D + days(1), 100), ours("same", D, 100)]
    lines = [line(2, D, 100), line(3, D + days(2), 100), line(4, D + days(9), 100)]
    result = match(ledger, lines, 5)
    assert [(m["row"], m["rule"], m["ledger"]["key"]) for m in result.matches] == [
        (2, "date_and_amount", "same"),
        (3, "window", "near"),
    ]
    assert [(d["kind"], d["row"]) for d in result.differences] == [
        ("missing_in_ledger", 4),
        ("missing_in_file", None),
    ]


def test_the_window_is_the_runs_own() -> None:
    ledger, lines = [ours("a", D, 100)], [line(2, D + days(3), 100)]
    assert match(ledger, lines, 3).by_rule() == {"reference": 0, "date_and_amount": 0, "window": 1}
    assert match(ledger, lines, 2).by_rule() == {"reference": 0, "date_and_amount": 0, "window": 0}


def test_each_entry_pairs_once() -> None:
    result = match([ours("a", D, 100)], [line(2, D, 100), line(3, D, 100)], 5)
    assert len(result.matches) == 1 and result.differences[0]["row"] == 3


def test_a_run_is_signed_off_once() -> None:
    run = ReconciliationRun(
        id=uuid.uuid4(), organization_code="X", period="2024-01", window_days=5, report={"a": 1}
    )
    moment = datetime.datetime(2024, 2, 1, tzinfo=datetime.UTC)
    run.sign_off(note="ok", by="token:t", at=moment)
    assert (run.status, run.signed_off_by, run.note) == ("signed_off", "token:t", "ok")
    with pytest.raises(InvalidStatus):
        run.sign_off(note="again", by="token:u", at=moment)
    assert run.report == {"a": 1} and run.note == "ok"


def test_a_reference_is_a_whole_word_or_a_voucher_ids_first_part() -> None:
    voucher = "062d8f28-2c58-4f61-bff6-02b46502b07b"
    ledger = [ours("a", D, 100, voucher, voucher[:8])]
    inside = match(ledger, [line(2, D + days(9), 100, "x062d8f28y")], 5)
    assert inside.matches == []
    prefix = match(ledger, [line(2, D + days(9), 100, f"转账 {voucher[:8]} 经费")], 5)
    assert [m["rule"] for m in prefix.matches] == ["reference"]
    # Chinese text has no spaces: a Han character next to the id ends the word as a space does.
    whole = match(ledger, [line(2, D + days(9), 100, f"凭证{voucher}")], 5)
    assert [m["rule"] for m in whole.matches] == ["reference"]


def test_tens_of_thousands_of_lines_cost_one_pass() -> None:
    import time

    ledger = [ours(f"v{i}", D + days(i % 20), 100 + i, f"ref{i}") for i in range(5_000)]
    lines = [
        line(i, D + days(i % 20), 100 + i % 7_000, f"ref{i}" if i % 3 else "")
        for i in range(30_000)
    ]
    started = time.perf_counter()
    result = match(ledger, lines, 5)
    assert time.perf_counter() - started < 5
    assert len(result.matches) + len(result.differences) >= 30_000
