"""scripts/bench/overrides.py, run small on both stores: every override is measured against
the library's way (a figure for each arm), the run's own checks that both ways answer alike
pass. No timed assertions: the machine is shared."""

from __future__ import annotations

import json
import numbers

import pytest

from scripts.bench import overrides
from tests.conftest import BACKENDS, PG_ADMIN_URL

SECTIONS = {
    "sqlite": {"save", "snapshot", "replay", "decode", "raw_sql", "projector"},
    "postgres": {"save", "snapshot", "replay", "decode", "raw_sql", "pg_insert", "projector"},
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_override_is_measured_against_the_librarys_way(backend: str, capsys) -> None:
    overrides.main(
        ["--backend", backend, "--rounds", "2", "--members", "1000", "--admin-url", PG_ADMIN_URL]
    )
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"deepcopy", backend}
    assert set(results[backend]) == SECTIONS[backend]
    for section in [results["deepcopy"], *results[backend].values()]:
        arms = {key.split(".")[-2] for key in section if "." in key}
        assert {"ours", "library"} <= arms, section
        assert all(isinstance(v, numbers.Real) and v >= 0 for v in section.values())
    # The projections ran over every member joined, the 1,000 loaded for the reads among them.
    assert results[backend]["projector"]["member_joined_events"] > 1000
