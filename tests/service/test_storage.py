"""The store under the application: reopening, positions, idempotency, concurrent writers.

Concurrent tests use real threads and several Ledger instances on one store, as two server
processes would: every write must either land whole or fail with a named error, never be lost.
"""

from __future__ import annotations

import datetime
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from domain.errors import (
    AlreadyMember,
    DomainError,
    IdempotencyKeyReused,
    InsufficientFunds,
    VersionConflict,
)
from domain.organizations import Organization
from service.application import Ledger
from service.commands import (
    ChangeOrganization,
    ClosePeriod,
    JoinMember,
    RecordDues,
    RecordExpense,
    RecordLevy,
    RetainMember,
)
from service.idempotency import IdempotencyKey
from tests.conftest import Backend
from tests.service.scenario import Tree, balances, found_tree, person

THREADS = 10


@pytest.fixture
def tree(ledger: Ledger) -> Tree:
    return found_tree(ledger)


def join(ledger: Ledger, n: int, org: str, *, idempotency: Any = None, **fields: Any):
    return ledger.execute(
        JoinMember(
            id_number=person(n),
            name=f"会员{n}",
            organization_code=org,
            joined_on="2024-01-02",
            **fields,
        ),
        idempotency=idempotency,
    )


def race(apps: list[Ledger], command: Callable[[Ledger, int], Any]) -> list[Any]:
    """Runs command(app, i) in THREADS threads released at once; returns results or errors."""
    barrier = threading.Barrier(THREADS)
    outcomes: list[Any] = [None] * THREADS

    def run(i: int) -> None:
        app = apps[i % len(apps)]
        barrier.wait()
        try:
            outcomes[i] = command(app, i)
        except Exception as exc:  # collected and asserted on by the test
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    unexpected = [
        o for o in outcomes if isinstance(o, Exception) and not isinstance(o, DomainError)
    ]
    assert not unexpected, f"writers failed outside the domain's errors: {unexpected!r}"
    return outcomes


def kinds(outcomes: list[Any]) -> Counter[str]:
    return Counter("ok" if not isinstance(o, Exception) else type(o).__name__ for o in outcomes)


def several_ledgers(backend: Backend, count: int = 3) -> list[Ledger]:
    """Separate application instances on one store: separate caches, connections, retries."""
    return [backend.open() for _ in range(count)]


# --- reopening and positions ----------------------------------------------------------------


def test_reopened_store_gives_the_same_aggregates(
    backend: Backend, ledger: Ledger, tree: Tree
) -> None:
    member_id = join(ledger, 1, tree.base_a, mobile="13912345678").body["member_id"]
    join(ledger, 2, tree.base_a)
    ledger.execute(RetainMember(member_id=member_id, effective_on="2024-02-01", reason_code=3))
    ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.county,
            base_organization_code=tree.base_a,
            employer_code=tree.employer_a,
            period="2024-03",
            payroll_total="123457.00",
            amount="2469.14",
            channel="tax",
            received_on="2024-04-10",
        )
    )
    ledger.execute(ClosePeriod(organization_code=tree.county, period="2024-04"))

    reopened = backend.open()
    for code in (tree.province, tree.city, tree.county, tree.township, tree.base_a):
        assert reopened.get_organization(code) == ledger.get_organization(code)
    assert reopened.get_member(member_id) == ledger.get_member(member_id)
    assert reopened.find_member(person(2)) == ledger.find_member(person(2))
    assert reopened.member_id_for(person(1)) == ledger.member_id_for(person(1))
    old_book, new_book = ledger.get_book(tree.county), reopened.get_book(tree.county)
    assert new_book is not None and old_book is not None
    assert new_book.balances == old_book.balances
    assert new_book.counterparty_balances == old_book.counterparty_balances
    assert new_book.closed_months == ["2024-04"]
    assert reopened.levy_policy_in_force("440106", "2024-03-01")["shares"]["base"] == "60"
    assert reopened.head_position() == ledger.head_position()


def test_positions_increase_and_name_the_stored_event(ledger: Ledger, tree: Tree) -> None:
    positions = []
    for n in range(1, 6):
        before = ledger.head_position()
        result = join(ledger, n, tree.base_b)
        assert result.position is not None and result.position > before
        assert result.position == ledger.head_position()
        member_uuid = ledger.member_id_for(person(n))
        joined_at = ledger.position_of(member_uuid)
        assert joined_at is not None and before < joined_at <= result.position
        positions.append(result.position)
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # The organisation's own first event was stored long before.
    founded_at = ledger.position_of(Organization.id_for(tree.base_b))
    assert founded_at is not None and founded_at < positions[0]
    assert ledger.position_of(Organization.id_for(tree.base_b), version=10_000) is None


# --- idempotency ---------------------------------------------------------------------------------


def test_same_key_same_request_replays_the_first_result(ledger: Ledger, tree: Tree) -> None:
    key = IdempotencyKey.parse(tree.base_a, "join-0001")
    first = join(ledger, 1, tree.base_a, idempotency=key)
    head = ledger.head_position()
    again = join(ledger, 1, tree.base_a, idempotency=key)
    assert again.replayed is True and first.replayed is False
    assert again.body == first.body
    assert again.position == first.position  # the first response's position, unchanged
    assert ledger.head_position() == head, "a replay stored events"
    assert ledger.get_organization(tree.base_a)["member_count"] == 1


def test_replayed_fund_command_does_not_post_twice(ledger: Ledger, tree: Tree) -> None:
    key = IdempotencyKey.parse(tree.base_a, "dues-2024-01")
    request = dict(
        organization_code=tree.base_a,
        period="2024-01",
        amount="100.00",
        received_on="2024-01-31",
    )
    first = ledger.execute(RecordDues(**request), idempotency=key)
    again = ledger.execute(RecordDues(**request), idempotency=key)
    assert again.replayed and again.body["voucher_id"] == first.body["voucher_id"]
    assert again.position == first.position
    assert balances(ledger, tree.base_a)["102"] == "100.00"


def test_same_key_other_request_is_refused(ledger: Ledger, tree: Tree) -> None:
    key = IdempotencyKey.parse(tree.base_a, "join-0001")
    join(ledger, 1, tree.base_a, idempotency=key)
    head = ledger.head_position()
    with pytest.raises(IdempotencyKeyReused):
        join(ledger, 2, tree.base_a, idempotency=key)
    with pytest.raises(IdempotencyKeyReused):  # another command under the same key
        ledger.execute(
            RecordDues(
                organization_code=tree.base_a,
                period="2024-01",
                amount="1.00",
                received_on="2024-01-31",
            ),
            idempotency=key,
        )
    assert ledger.head_position() == head
    assert ledger.get_organization(tree.base_a)["member_count"] == 1


def test_keys_are_scoped(ledger: Ledger, tree: Tree) -> None:
    join(ledger, 1, tree.base_a, idempotency=IdempotencyKey.parse(tree.base_a, "k-1"))
    other_scope = join(ledger, 2, tree.base_b, idempotency=IdempotencyKey.parse(tree.base_b, "k-1"))
    assert other_scope.replayed is False
    assert other_scope.body["organization_code"] == tree.base_b
    # The same body under another scope is a new command too, and here the rules refuse it.
    with pytest.raises(AlreadyMember):
        join(ledger, 1, tree.base_a, idempotency=IdempotencyKey.parse(tree.base_b, "k-2"))


def test_failed_command_records_no_key(ledger: Ledger, tree: Tree) -> None:
    key = IdempotencyKey.parse(tree.base_a, "expense-1")
    request = dict(
        organization_code=tree.base_a,
        account_code="501",
        amount="10.00",
        earmarked=False,
        description="活动",
        paid_on="2024-01-20",
    )
    with pytest.raises(InsufficientFunds):
        ledger.execute(RecordExpense(**request), idempotency=key)
    ledger.execute(
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="10.00",
            received_on="2024-01-05",
        )
    )
    # The retry now succeeds, and a second retry replays it.
    assert ledger.execute(RecordExpense(**request), idempotency=key).replayed is False
    assert ledger.execute(RecordExpense(**request), idempotency=key).replayed is True


# --- concurrency -------------------------------------------------------------------------------


def test_racing_joins_of_one_person_admit_exactly_one(
    backend: Backend, ledger: Ledger, tree: Tree
) -> None:
    apps = several_ledgers(backend)
    bases = [tree.base_a, tree.base_b, tree.base_c]
    outcomes = race(apps, lambda app, i: join(app, 7, bases[i % 3]))
    assert kinds(outcomes) == Counter({"ok": 1, "AlreadyMember": THREADS - 1})
    winner = next(o for o in outcomes if not isinstance(o, Exception))
    counts = {b: ledger.get_organization(b)["member_count"] for b in bases}
    assert counts[winner.body["organization_code"]] == 1 and sum(counts.values()) == 1
    assert ledger.find_member(person(7))["organization_code"] == winner.body["organization_code"]


def test_racing_joins_of_different_people_all_land(
    backend: Backend, ledger: Ledger, tree: Tree
) -> None:
    apps = several_ledgers(backend)
    outcomes = race(apps, lambda app, i: join(app, 100 + i, tree.base_a))
    assert kinds(outcomes) == Counter({"ok": THREADS})
    assert backend.open().get_organization(tree.base_a)["member_count"] == THREADS


def test_racing_dues_to_one_union_all_land(backend: Backend, ledger: Ledger, tree: Tree) -> None:
    apps = several_ledgers(backend)
    amounts = [f"{10 + i}.{i:02d}" for i in range(THREADS)]
    outcomes = race(
        apps,
        lambda app, i: app.execute(
            RecordDues(
                organization_code=tree.base_a,
                period="2024-01",
                amount=amounts[i],
                received_on="2024-01-31",
            )
        ),
    )
    assert kinds(outcomes) == Counter({"ok": THREADS})
    expected_fen = sum(int(a.replace(".", "")) for a in amounts)
    for app in [ledger, backend.open()]:
        assert app.get_book(tree.base_a).balances["102"] == expected_fen
        assert app.get_book(tree.base_a).balances["401"] == -expected_fen


def test_racing_idempotent_retries_write_once(backend: Backend, ledger: Ledger, tree: Tree) -> None:
    apps = several_ledgers(backend)
    key = IdempotencyKey.parse(tree.base_a, "dues-burst-1")
    ledger.execute(
        RecordDues(
            organization_code=tree.base_a, period="2024-01", amount="0.45", received_on="2024-01-05"
        )
    )  # opens the book, so the count below is exact
    head = ledger.head_position()
    outcomes = race(
        apps,
        lambda app, i: app.execute(
            RecordDues(
                organization_code=tree.base_a,
                period="2024-01",
                amount="55.55",
                received_on="2024-01-31",
            ),
            idempotency=key,
        ),
    )
    assert kinds(outcomes) == Counter({"ok": THREADS})
    assert sum(not o.replayed for o in outcomes) == 1
    assert len({o.body["voucher_id"] for o in outcomes}) == 1
    assert len({o.position for o in outcomes}) == 1
    assert ledger.get_book(tree.base_a).balances["102"] == 5600
    # One voucher, one book entry, one idempotency record: three events, no more.
    assert ledger.head_position() - head == 3


def test_racing_payouts_never_overdraw(backend: Backend, ledger: Ledger, tree: Tree) -> None:
    apps = several_ledgers(backend)
    ledger.execute(
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="100.00",
            received_on="2024-01-05",
        )
    )
    outcomes = race(
        apps,
        lambda app, i: app.execute(
            RecordExpense(
                organization_code=tree.base_a,
                account_code="501",
                amount="15.00",
                earmarked=False,
                description=f"活动{i}",
                paid_on="2024-01-20",
            )
        ),
    )
    counted = kinds(outcomes)
    assert set(counted) <= {"ok", "InsufficientFunds", "VersionConflict"}
    paid = counted["ok"]
    book = backend.open().get_book(tree.base_a)
    assert book.balances["102"] == 10000 - 1500 * paid >= 0
    assert book.balances["501"] == 1500 * paid
    if counted["VersionConflict"] == 0:
        assert paid == 6  # 6 x 15.00 fit into 100.00, a 7th would overdraw


def test_racing_back_dated_payouts_never_overdraw_a_later_date(
    backend: Backend, ledger: Ledger, tree: Tree
) -> None:
    """100.00 in on 5 January and 40.00 out on 25 January: payouts dated 10 January race;
    at most 60.00 of them fit, or the balance of 25 January would be negative."""
    apps = several_ledgers(backend)
    ledger.execute(
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="100.00",
            received_on="2024-01-05",
        )
    )
    ledger.execute(
        RecordExpense(
            organization_code=tree.base_a,
            account_code="501",
            amount="40.00",
            earmarked=False,
            description="月末活动",
            paid_on="2024-01-25",
        )
    )
    outcomes = race(
        apps,
        lambda app, i: app.execute(
            RecordExpense(
                organization_code=tree.base_a,
                account_code="501",
                amount="15.00",
                earmarked=False,
                description=f"补记{i}",
                paid_on="2024-01-10",
            )
        ),
    )
    counted = kinds(outcomes)
    assert set(counted) <= {"ok", "InsufficientFunds", "VersionConflict"}
    paid = counted["ok"]
    book = backend.open().get_book(tree.base_a)
    assert book.balances["102"] == 10000 - 4000 - 1500 * paid >= 0
    assert book.lowest_from("102", datetime.date(2024, 1, 1), 0)[0] >= 0
    if counted["VersionConflict"] == 0:
        assert paid == 4  # 4 x 15.00 fit into the 60.00 left on 25 January
    for refused in (o for o in outcomes if isinstance(o, InsufficientFunds)):
        assert "2024-01-25" in refused.message
    # Voucher numbers of January: 1..n without gaps, each taken once, whoever won the race.
    numbers = sorted(
        o.body["numbers"][tree.base_a] for o in outcomes if not isinstance(o, Exception)
    )
    assert numbers == [f"记-2024-01-{n:04d}" for n in range(3, 3 + paid)]
    assert book.voucher_counts == {"2024-01": 2 + paid}


def test_exhausted_retries_fail_loudly_and_lose_nothing(
    backend: Backend, ledger: Ledger, tree: Tree
) -> None:
    """With one attempt only, colliding writers must get VersionConflict, never a lost update."""
    impatient = backend.settings.model_copy(update={"conflict_retries": 1})
    apps = [Ledger(impatient) for _ in range(3)]
    try:
        outcomes = race(
            apps,
            lambda app, i: app.execute(
                RecordDues(
                    organization_code=tree.base_a,
                    period="2024-01",
                    amount="1.00",
                    received_on="2024-01-31",
                )
            ),
        )
    finally:
        for app in apps:
            app.close()
    counted = kinds(outcomes)
    assert set(counted) <= {"ok", "VersionConflict"}
    assert counted["ok"] >= 1
    book = backend.open().get_book(tree.base_a)
    assert book.balances["102"] == 100 * counted["ok"]
    assert issubclass(VersionConflict, DomainError)


def test_member_aggregate_id_is_shared_by_all_instances(backend: Backend, ledger: Ledger) -> None:
    # The keyed hash depends only on the configured key: another process finds the same member.
    other = backend.open()
    assert ledger.member_id_for(person(3)) == other.member_id_for(person(3))
    assert ledger.member_id_for(person(3)) != ledger.member_id_for(person(4))


def test_a_writer_sees_what_another_process_changed_since_its_last_batch(
    backend: Backend, ledger: Ledger, tree: Tree
) -> None:
    """A levy only reads the unions above its base union; their books change, they do not.
    The writer must still see a move that another process made after the writer last read the
    base union (its cache is brought up to date from the log before each batch)."""
    from tests.service.test_rules import lines, tax_levy

    before = tax_levy(
        ledger,
        tree,
        tree.county,
        tree.base_a,
        tree.employer_a,
        "100000.00",
        "2000.00",
        on="2024-07-10",
        period="2024-06",
    )
    assert [line for line in lines(before) if line[4] == tree.township] == []
    other = backend.open()
    other.execute(
        ChangeOrganization(code=tree.base_a, effective_on="2024-06-01", parent_code=tree.township)
    )
    after = tax_levy(
        ledger,
        tree,
        tree.county,
        tree.base_a,
        tree.employer_a,
        "100000.00",
        "2000.00",
        on="2024-07-11",
        period="2024-06",
    )
    assert (tree.county, "212", "0.00", "100.00", tree.township) in lines(after)


def test_writers_of_several_processes_take_turns_without_losing_updates(
    backend: Backend, ledger: Ledger, tree: Tree
) -> None:
    """Joins and dues through three application instances at once: every batch is checked
    against the others' writes under the writer lock, and nothing is lost or doubled."""
    apps = several_ledgers(backend)

    def command(app: Ledger, i: int) -> Any:
        if i % 2:
            return app.execute(
                RecordDues(
                    organization_code=tree.base_a,
                    period="2024-01",
                    amount="10.00",
                    received_on="2024-01-31",
                )
            )
        return join(app, 300 + i, tree.base_a)

    outcomes = race(apps, command)
    assert kinds(outcomes) == Counter({"ok": THREADS})
    fresh = backend.open()
    assert fresh.get_organization(tree.base_a)["member_count"] == THREADS // 2
    assert fresh.get_book(tree.base_a).balances["102"] == 1000 * (THREADS // 2)
