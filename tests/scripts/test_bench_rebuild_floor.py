"""The rebuild's machine floor (scripts/bench/rebuild_floor.py) measures the work every build
must do over the read models a build made, and leaves them as they were."""

from __future__ import annotations

from projections.read_models.models import ReadModels
from scripts.bench import rebuild_floor
from tests.projections.helpers import live_rows
from tests.service.scenario import found_tree, join_members

MEMBERS = 12


def _floor_tables(read_models: ReadModels) -> list[str]:
    with read_models.store.reader() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'rm\\_floor\\_%'")
        return [name for (name,) in cur.fetchall()]


def test_the_floor_counts_every_event_row_and_sealed_value(backend):
    ledger = backend.open()
    tree = found_tree(ledger)
    join_members(ledger, tree.base_a, range(MEMBERS), mobile=True)
    read_models = ReadModels(ledger)
    try:
        read_models.catch_up()
        before = live_rows(read_models)
        result = rebuild_floor.measure(ledger)
        if backend.kind == "sqlite":
            assert result == {
                "rebuild_floor_events_per_s": None,
                "unavailable": rebuild_floor.SQLITE_UNAVAILABLE,
            }
            return
        assert result["events"] == ledger.head_position()
        assert result["rows"] == sum(len(rows) for rows in before.values())
        # Each member's name, identity number and mobile sealed once; each identity number
        # hashed for look-ups.
        assert result["personal_data"]["seals"] >= 3 * MEMBERS
        assert result["personal_data"]["hashes"] >= MEMBERS
        assert result["rebuild_floor_events_per_s"] > 0
        assert result["cpu_s"] > 0 and result["cores"] >= 1
        assert result["write"]["rows_per_event"] == round(result["rows"] / result["events"], 2)
        # The live read models are untouched and the scratch set is gone.
        assert live_rows(read_models) == before
        assert _floor_tables(read_models) == []
    finally:
        read_models.close()
