"""Server crash: `ledger serve` is killed with SIGKILL under load, several times, and started
again on the same PostgreSQL database.

Every acknowledged write is present exactly once (the union's bank balance is the sum of the
stored receipts, each of a distinct amount), retrying any request with its original
Idempotency-Key never writes twice, and the read models equal a fresh rebuild."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from tests.reliability.conftest import Deployment
from tests.reliability.load import DuesLoad, bank_balance_fen, retry_all
from tests.reliability.report import record

KILLS = 3
ACKS_BEFORE_KILL = 20  # the load is really writing when the server is killed
LOAD_BEFORE_KILL_S = (0.0, 2.5)  # then a random moment of it


@pytest.mark.slow
def test_kill_the_server_under_load(shared_pg_deployment: Deployment) -> None:
    d = shared_pg_deployment
    code = d.tree.base_a
    rng = random.Random(7)
    load = DuesLoad(lambda: d.server.url, d.admin, code, clients=6)
    load.start()
    restarts_s = []
    for _ in range(KILLS):
        load.wait_for_acks(ACKS_BEFORE_KILL)
        time.sleep(rng.uniform(*LOAD_BEFORE_KILL_S))
        d.server.kill()
        time.sleep(0.5)  # clients meet a dead port for a while (not a synchronisation)
        restarts_s.append(d.server.start())
    load.wait_for_acks(ACKS_BEFORE_KILL)  # and write again after the last restart
    load.stop()

    acked = load.acked()
    assert len(acked) > 50, "too little load to prove anything"
    assert not load.refused(), [s.response for s in load.refused()][:3]
    with httpx.Client(timeout=60) as client:
        stored_fen = bank_balance_fen(client, d.server.url, d.admin, code)
        acked_fen = sum(s.amount_fen for s in acked)
        unknown_fen = sum(s.amount_fen for s in load.unknown())
        # Every acknowledged receipt is there; at most the unanswered ones besides.
        assert acked_fen <= stored_fen <= acked_fen + unknown_fen
        outcomes = retry_all(load, load.sent)
        # Each request is now stored exactly once: the sum of distinct amounts, no more.
        assert bank_balance_fen(client, d.server.url, d.admin, code) == sum(
            s.amount_fen for s in load.sent
        )
    assert outcomes["replayed"] >= len(acked)

    check = d.processes.rebuild_check()
    assert check.returncode == 0, check.stdout + check.stderr
    record(
        "server_crash",
        {
            "requests": len(load.sent),
            "acknowledged": len(acked),
            "unknown_outcome": len(load.unknown()),
            "kills_survived": KILLS,
            "max_restart_s": round(max(restarts_s), 2),
            "retried_replayed": outcomes["replayed"],
            "retried_written_now": outcomes["written_now"],
            "acknowledged_lost": 0,
            "written_twice": 0,
        },
    )
