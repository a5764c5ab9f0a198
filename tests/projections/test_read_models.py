"""The read models on worked cases: rolls as of a date and as known at a moment, the change
codes, statements with parent accounts, reversals, the journal's provenance, personal data at
rest. Both stores."""

from __future__ import annotations

import datetime
import threading
import time
from uuid import UUID, uuid4

import pytest

from domain.errors import InvalidValue, NotFound
from domain.vouchers import Voucher
from projections.read_models import worker as worker_module
from projections.read_models.models import ReadModels
from projections.read_models.worker import ProjectionWorker
from service.commands import (
    AcceptTransfer,
    CancelTransfer,
    ChangeOrganization,
    CorrectMember,
    ExitMember,
    JoinMember,
    RecordDues,
    RecordExpense,
    RecordLevy,
    ReinstateMember,
    RetainMember,
    ReverseVoucher,
    StartTransfer,
)
from tests.processes import eventually
from tests.projections.helpers import assert_equal_to_rebuild
from tests.service.scenario import found_tree, person

D = datetime.date


@pytest.fixture
def setup(ledger):
    tree = found_tree(ledger)
    rm = ReadModels(ledger)
    yield ledger, tree, rm
    rm.close()


def _join(ledger, tree_org, n, day, **kw):
    return ledger.execute(
        JoinMember(
            id_number=person(n), name=f"会员{n}", organization_code=tree_org, joined_on=day, **kw
        )
    ).body["member_id"]


def _statuses(rm, code, day, known_at=None, scope="self"):
    roll = rm.roll(code, as_of=day, known_at=known_at, scope=scope, page_size=1000)
    return {item["member_id"]: item["status"] for item in roll["items"]}


def test_roll_over_time_and_as_known(setup):
    ledger, tree, rm = setup
    a = _join(ledger, tree.base_a, 1, "2024-01-10", migrant_worker=True)
    b = _join(ledger, tree.base_a, 2, "2024-02-01")
    rm.catch_up()
    before_transfer = datetime.datetime.now(datetime.UTC)
    time.sleep(0.002)
    transfer = ledger.execute(
        StartTransfer(
            member_id=a, to_organization_code=tree.base_b, effective_on="2024-03-01", reason_code=1
        )
    ).body
    ledger.execute(
        AcceptTransfer(member_id=a, transfer_id=transfer["transfer_id"], effective_on="2024-03-15")
    )
    ledger.execute(RetainMember(member_id=b, effective_on="2024-04-01", reason_code=3))
    ledger.execute(ExitMember(member_id=b, effective_on="2024-05-01", change_code=6, reason_code=5))
    rm.catch_up()

    assert _statuses(rm, tree.base_a, D(2024, 1, 9)) == {}
    assert _statuses(rm, tree.base_a, D(2024, 1, 10)) == {a: "active"}
    assert _statuses(rm, tree.base_a, D(2024, 3, 2)) == {a: "transfer_pending", b: "active"}
    assert _statuses(rm, tree.base_b, D(2024, 3, 15)) == {a: "active"}
    assert _statuses(rm, tree.base_a, D(2024, 4, 15)) == {b: "retained"}
    assert _statuses(rm, tree.base_a, D(2024, 5, 1)) == {}
    # As known before the transfer was recorded, a is still at base A in the future too.
    assert _statuses(rm, tree.base_a, D(2024, 6, 1), known_at=before_transfer) == {
        a: "active",
        b: "active",
    }
    assert _statuses(rm, tree.county, D(2024, 3, 20), scope="subtree") == {a: "active", b: "active"}

    summary = rm.roll_summary(tree.county, as_of=D(2024, 4, 15), scope="subtree")
    assert summary["members"] == 2 and summary["retained"] == 1
    assert summary["migrant_workers"] == 1
    assert summary["employees"] == 360
    # 入会率 counts working members only: a over 360 employees, not the retained b.
    assert summary["membership_rate"] == "0.0028"
    only_retained = rm.roll_summary(tree.base_a, as_of=D(2024, 4, 15), scope="self")
    assert (only_retained["members"], only_retained["retained"]) == (1, 1)
    assert only_retained["membership_rate"] == "0.0000"

    changes = rm.roll_changes(
        tree.county, date_from=D(2024, 1, 1), date_to=D(2024, 12, 31), scope="subtree"
    )
    codes = [(i["member_id"], i["change_code"], i["organization_code"]) for i in changes["items"]]
    assert codes == [
        (a, 1, tree.base_a),
        (b, 1, tree.base_a),
        (a, 4, tree.base_a),
        (a, 2, tree.base_b),
        (b, 3, tree.base_a),
        (b, 6, tree.base_a),
    ]
    only_a = rm.roll_changes(tree.base_b, date_from=D(2024, 1, 1), date_to=D(2024, 12, 31))
    assert [i["change_code"] for i in only_a["items"]] == [2]
    history = rm.member_history(b)
    assert [(h["change_code"], h["reason_code"]) for h in history] == [(1, None), (3, 3), (6, 5)]
    assert_equal_to_rebuild(rm)


def test_cancelled_transfer_and_rejoin_and_correction(setup):
    ledger, tree, rm = setup
    a = _join(ledger, tree.base_a, 3, "2024-01-01", mobile="13800138000")
    transfer = ledger.execute(
        StartTransfer(
            member_id=a, to_organization_code=tree.base_c, effective_on="2024-02-01", reason_code=1
        )
    ).body
    rm.catch_up()
    while_pending = datetime.datetime.now(datetime.UTC)
    time.sleep(0.002)
    ledger.execute(CancelTransfer(member_id=a, transfer_id=transfer["transfer_id"]))
    ledger.execute(
        CorrectMember(member_id=a, changes={"name": "更正后", "mobile": None}, note="录入错误")
    )
    ledger.execute(ExitMember(member_id=a, effective_on="2024-03-01", change_code=5, reason_code=6))
    _join(ledger, tree.base_b, 3, "2024-06-01")
    rm.catch_up()
    # Cancelled: as now known the member was never pending.
    assert _statuses(rm, tree.base_a, D(2024, 2, 15)) == {a: "active"}
    assert _statuses(rm, tree.base_a, D(2024, 2, 15), known_at=while_pending) == {
        a: "transfer_pending"
    }
    item = rm.roll(tree.base_b, as_of=D(2024, 6, 1))["items"][0]
    assert item["member_id"] == a and item["joined_on"] == "2024-06-01"
    assert item["name"] == "会员3"  # the rejoin recorded the name again
    old = rm.roll(tree.base_a, as_of=D(2024, 2, 15), known_at=while_pending)["items"][0]
    assert old["name"] == "会员3" and old["mobile"] == "13800138000"
    assert rm.member_ids_by_id_number(person(3)) == [a]
    assert [h["change_code"] for h in rm.member_history(a)] == [1, 5, 1]
    assert_equal_to_rebuild(rm)


def test_statements_parent_accounts_reversal_and_journal(setup):
    ledger, tree, rm = setup
    ledger.execute(
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="1000.00",
            received_on="2024-01-20",
        )
    )
    ledger.execute(
        RecordExpense(
            organization_code=tree.base_a,
            account_code="50404",
            amount="100.00",
            earmarked=True,
            description="帮扶困难职工",
            paid_on="2024-01-25",
        )
    )
    ledger.execute(
        RecordExpense(
            organization_code=tree.base_a,
            account_code="504",
            amount="20.00",
            earmarked=False,
            description="维权",
            paid_on="2024-01-26",
        )
    )
    wrong = ledger.execute(
        RecordExpense(
            organization_code=tree.base_a,
            account_code="501",
            amount="30.00",
            earmarked=False,
            description="错账",
            paid_on="2024-01-27",
        )
    ).body
    ledger.execute(
        ReverseVoucher(voucher_id=wrong["voucher_id"], effective_on="2024-02-02", reason="重复录入")
    )
    rm.catch_up()

    ie = rm.income_expenditure(tree.base_a, date_from=D(2024, 1, 1), date_to=D(2024, 1, 31))
    lines = {line["account_code"]: line for line in ie["lines"]}
    assert lines["50404"]["earmarked"] == "100.00"
    assert (lines["504"]["earmarked"], lines["504"]["general"], lines["504"]["amount"]) == (
        "100.00",
        "20.00",
        "120.00",
    )
    assert lines["501"]["amount"] == "30.00"
    assert ie["totals"]["income"] == "1000.00" and ie["surplus"] == "850.00"
    february = rm.income_expenditure(tree.base_a, date_from=D(2024, 2, 1), date_to=D(2024, 2, 29))
    assert {line["account_code"]: line["amount"] for line in february["lines"]}["501"] == "-30.00"

    sheet = rm.balance_sheet(tree.base_a, as_of=D(2024, 12, 31))
    assert sheet["balanced"]
    assert {line["account_code"]: line["amount"] for line in sheet["lines"]}["102"] == "880.00"
    assert sheet["totals"]["surplus"] == {"opening": "0.00", "closing": "880.00"}

    trial = rm.trial_balance(tree.base_a, date_from=D(2024, 2, 1), date_to=D(2024, 12, 31))
    bank = next(line for line in trial["lines"] if line["account_code"] == "102")
    # 红字冲销: the reversal's bank line is a credit of -30.00, not a debit of 30.00.
    assert (bank["opening"], bank["debit"], bank["credit"], bank["closing"]) == (
        "850.00",
        "0.00",
        "-30.00",
        "880.00",
    )
    spent = next(line for line in trial["lines"] if line["account_code"] == "501")
    assert (spent["debit"], spent["credit"]) == ("-30.00", "0.00")
    assert trial["balanced"]

    journal = rm.journal(
        tree.base_a, date_from=D(2024, 1, 1), date_to=D(2024, 12, 31), page=1, page_size=3
    )
    assert journal["total"] == 10 and len(journal["items"]) == 3
    first = journal["items"][0]
    assert first["description"] == "收2024-01会费" and first["account_name"] == "银行存款"
    assert first["event"]["type"] == "ledger:Voucher.Posted" and first["position"] > 0
    last = rm.journal(tree.base_a, date_from=D(2024, 2, 1), date_to=D(2024, 2, 29))["items"]
    assert all(item["reverses"] == wrong["voucher_id"] for item in last)
    assert "重复录入" in last[0]["description"]


def test_levy_subtree_and_tree_over_time(setup):
    ledger, tree, rm = setup
    ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.county,
            base_organization_code=tree.base_a,
            employer_code=tree.employer_a,
            period="2024-01",
            payroll_total="123457.00",
            amount="2469.14",
            channel="tax",
            received_on="2024-02-10",
        )
    )
    # base_b moves under the township from March: the subtree follows the date.
    ledger.execute(
        ChangeOrganization(code=tree.base_b, effective_on="2024-03-01", parent_code=tree.township)
    )
    rm.catch_up()
    county = rm.balance_sheet(tree.county, as_of=D(2024, 2, 28))
    amounts = {line["account_code"]: line["amount"] for line in county["lines"]}
    assert (amounts["102"], amounts["211"], amounts["212"]) == ("2469.14", "493.83", "1481.48")
    assert county["totals"]["surplus"]["closing"] == "493.83" and county["balanced"]
    township_feb = rm.roll_summary(tree.township, as_of=D(2024, 2, 28), scope="subtree")
    township_mar = rm.roll_summary(tree.township, as_of=D(2024, 3, 1), scope="subtree")
    assert (township_feb["employees"], township_mar["employees"]) == (120, 240)


def test_errors_and_limits(setup):
    _, tree, rm = setup
    rm.catch_up()
    with pytest.raises(NotFound):
        rm.roll("81440106000000099X", as_of=D(2024, 1, 1))
    with pytest.raises(InvalidValue):
        rm.roll(tree.base_a, as_of=D(2024, 1, 1), page_size=1001)
    with pytest.raises(InvalidValue):
        rm.roll(tree.base_a, as_of=D(2024, 1, 1), scope="everything")
    with pytest.raises(InvalidValue):
        rm.trial_balance(tree.base_a, date_from=D(2024, 2, 1), date_to=D(2024, 1, 1))


def test_personal_data_is_not_stored_in_plaintext(setup, backend):
    ledger, tree, rm = setup
    number = person(42)
    ledger.execute(
        JoinMember(
            id_number=number,
            name="独特姓名甲",
            organization_code=tree.base_a,
            joined_on="2024-01-01",
            mobile="13912345678",
        )
    )
    rm.catch_up()
    assert rm.roll(tree.base_a, as_of=D(2024, 1, 1))["items"][0]["id_number"] == number
    with rm.store.reader() as cur:
        cur.execute(
            "SELECT name_enc, id_number_enc, mobile_enc, id_number_hash FROM rm_member_details"
        )
        row = cur.fetchone()
    blob = b"".join(bytes(v) if not isinstance(v, str) else v.encode() for v in row)
    for secret in (number, "独特姓名甲", "13912345678"):
        assert secret.encode() not in blob
    if backend.kind == "sqlite":
        raw = backend.sqlite_path.read_bytes() + (
            backend.sqlite_path.with_name("ledger.sqlite-wal").read_bytes()
            if backend.sqlite_path.with_name("ledger.sqlite-wal").exists()
            else b""
        )
        for secret in (number, "独特姓名甲", "13912345678"):
            assert secret.encode() not in raw


def test_concurrent_catch_ups_apply_each_event_once(setup):
    ledger, tree, rm = setup
    for n in range(40):
        _join(ledger, tree.base_a if n % 2 else tree.base_b, 100 + n, "2024-01-01")
        ledger.execute(
            RecordDues(
                organization_code=tree.base_a,
                period="2024-01",
                amount=f"{n + 1}.00",
                received_on="2024-01-20",
            )
        )
    others = [ReadModels(ledger) for _ in range(3)]
    errors: list[BaseException] = []

    def run(models: ReadModels) -> None:
        try:
            models.catch_up(batch_events=7)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for m in others:
        m.close()
    assert not errors
    assert rm.position() == ledger.head_position()
    assert rm.roll_summary(tree.county, as_of=D(2024, 2, 1), scope="subtree")["members"] == 40
    assert_equal_to_rebuild(rm)


def test_worker_wakes_on_new_events(setup, backend, monkeypatch):
    ledger, tree, rm = setup
    # On PostgreSQL the worker sleeps on LISTEN until a NOTIFY or its timeout: a timeout far
    # beyond the test's patience leaves only the NOTIFY to wake it. SQLite polls.
    worker = ProjectionWorker(rm, listen_timeout_s=600, poll_interval_s=0.05)
    waiting = threading.Event()
    wait = worker._wait

    def noted_wait(listener):
        waiting.set()
        wait(listener)

    monkeypatch.setattr(worker, "_wait", noted_wait)
    worker.start()
    try:
        # Caught up and gone to sleep (a fixed pause stood for this, and guessed).
        eventually(lambda: waiting.is_set() and rm.lag() == 0, "the worker caught up and waits")
        position = ledger.execute(
            JoinMember(
                id_number=person(7),
                name="新会员",
                organization_code=tree.base_a,
                joined_on="2024-01-01",
            )
        ).position
        eventually(lambda: rm.position() >= position, "the worker woke on the new event")
    finally:
        worker.stop()
    assert rm.wait_for(position)


def test_worker_maintains_the_tables_once_writes_pause(setup, monkeypatch):
    """Statistics and vacuum every MAINTAIN_EVERY_EVENTS events, and also after a burst of
    fewer once nothing new arrives: the reads after a roster import find them fresh."""
    ledger, tree, rm = setup
    monkeypatch.setattr(worker_module, "QUIET_MAINTAIN_EVENTS", 3)
    maintained: list[int] = []
    original = rm.maintain

    def maintain(min_events: int | None = None) -> bool:
        ran = original(min_events)
        if ran:
            maintained.append(rm.position())
        return ran

    monkeypatch.setattr(rm, "maintain", maintain)
    # The burst reaches the worker whole, as a roster import's does. Had the worker caught
    # up between two of the joins (a slow test thread), it would have maintained after the
    # third and, with one event since, never after the fourth.
    burst = threading.Lock()
    catch_up = rm.catch_up

    def catch_up_between_bursts(*args, **kwargs):
        with burst:
            return catch_up(*args, **kwargs)

    monkeypatch.setattr(rm, "catch_up", catch_up_between_bursts)
    worker = ProjectionWorker(rm, listen_timeout_s=0.2, poll_interval_s=0.05, min_interval_s=0.05)
    worker.start()
    try:
        with burst:
            for n in range(4):
                _join(ledger, tree.base_a, 300 + n, "2024-01-01")
        head = ledger.head_position()
        eventually(
            lambda: bool(maintained) and maintained[-1] == head,
            "the tables maintained once the burst was applied",
        )
    finally:
        worker.stop()
    assert maintained and maintained[-1] == head  # far fewer than MAINTAIN_EVERY_EVENTS
    assert not original(3)  # nothing applied since: not due again


def test_gaps_in_notification_ids_are_skipped(setup, backend):
    ledger, tree, rm = setup
    if backend.kind == "sqlite":
        pytest.skip("SQLite rowids have no gaps: an insert takes the largest rowid plus one")
    _join(ledger, tree.base_a, 201, "2024-01-01")
    rm.catch_up()
    table = ledger.recorder.events_table_name
    with rm.store.reader() as cur:
        # What a rolled-back insert leaves behind: sequence numbers never used.
        cur.execute(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'notification_id')) "
            "FROM generate_series(1, 25)"
        )
        cur.connection.commit()
    before = ledger.head_position()
    _join(ledger, tree.base_b, 202, "2024-01-01")
    assert ledger.head_position() > before + 25
    assert rm.catch_up() == ledger.head_position()
    assert rm.roll_summary(tree.county, as_of=D(2024, 1, 2), scope="subtree")["members"] == 2
    assert_equal_to_rebuild(rm)


def test_tables_of_another_schema_version_are_rebuilt(setup, backend):
    ledger, tree, rm = setup
    _join(ledger, tree.base_a, 301, "2024-01-01")
    rm.catch_up()
    conn = rm.store.connect()
    with rm.store.transaction(conn) as cur:
        cur.execute("UPDATE rm_position SET position = 0 WHERE name = 'schema'")
    conn.close()
    again = ReadModels(ledger)
    try:
        assert again.position() == 0
        again.catch_up()
        assert again.roll_summary(tree.base_a, as_of=D(2024, 1, 1))["members"] == 1
        assert_equal_to_rebuild(again)
    finally:
        again.close()


def test_tables_are_maintained_once_enough_events_were_applied(setup, monkeypatch):
    """Statistics (and the visibility map, on PostgreSQL) are refreshed every so many events,
    not on every catch-up."""
    import projections.read_models.models as read_models

    ledger, tree, rm = setup
    monkeypatch.setattr(read_models, "MAINTAIN_EVERY_EVENTS", 5)
    rm.catch_up()
    assert rm.maintain() is True
    assert rm.maintain() is False  # nothing applied since
    lines = rm.tables.table("ledger_lines")
    with rm.store.reader() as cur:
        if rm.store.is_sqlite:
            cur.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            assert cur.fetchone()[0] == 1
        else:
            cur.execute(
                "SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL"
                " FROM pg_stat_user_tables WHERE relname = %s",
                (lines,),
            )
            assert cur.fetchone()[0] is True
    for n in range(6):
        _join(ledger, tree.base_a, 500 + n, "2024-02-01")
    rm.catch_up()
    assert rm.maintain() is True


def test_a_reversal_stored_with_swapped_sides_reads_as_red_ink(setup):
    """Reversals were once stored with debit and credit swapped (positive amounts); the
    voucher and every read model show them as red ink, with the same balances."""
    ledger, tree, rm = setup
    dues = ledger.execute(
        RecordDues(
            organization_code=tree.base_a,
            period="2024-03",
            amount="80.00",
            received_on="2024-03-05",
        )
    ).body
    original = ledger.repository.get(UUID(dues["voucher_id"]))
    old_form = [p.swapped() for p in original.postings]
    reversal = Voucher(
        id=uuid4(),
        kind="reversal",
        effective_on=datetime.date(2024, 3, 20),
        postings=[p.red_ink() for p in original.postings],
        details={"reason": "旧冲销", "reverses_kind": "dues"},
        reverses=dues["voucher_id"],
    )
    (posted,) = reversal.collect_events()
    object.__setattr__(posted, "postings", old_form)  # as the code before red ink stored it
    ledger.recorder.insert_events([ledger.mapper.to_stored_event(posted)])
    stored = ledger.repository.get(reversal.id)
    assert [(p.account_code, p.debit.fen, p.credit.fen) for p in stored.postings] == [
        ("102", -8000, 0),
        ("401", 0, -8000),
    ]
    rm.catch_up()
    trial = rm.trial_balance(tree.base_a, date_from=D(2024, 3, 1), date_to=D(2024, 3, 31))
    income = next(line for line in trial["lines"] if line["account_code"] == "401")
    assert (income["debit"], income["credit"], income["closing"]) == ("0.00", "0.00", "0.00")
    assert_equal_to_rebuild(rm)


def test_a_reinstatement_appears_in_the_changes_report(setup):
    ledger, tree, rm = setup
    member = _join(ledger, tree.base_b, 31, "2024-01-10")
    ledger.execute(RetainMember(member_id=member, effective_on="2024-03-01", reason_code=7))
    ledger.execute(ReinstateMember(member_id=member, effective_on="2024-06-01"))
    rm.catch_up()
    changes = rm.roll_changes(tree.base_b, date_from=D(2024, 1, 1), date_to=D(2024, 12, 31))
    mine = [
        (c["change_code"], c["reason_code"], c["change_name"], c["reinstated"], c["effective_on"])
        for c in changes["items"]
        if c["member_id"] == member
    ]
    assert mine == [
        (1, None, "入会", False, "2024-01-10"),
        (3, 7, "保留会籍", False, "2024-03-01"),
        (1, None, "恢复会籍", True, "2024-06-01"),
    ]
    assert [h["reinstated"] for h in rm.member_history(member)] == [False, False, True]
    assert_equal_to_rebuild(rm)
