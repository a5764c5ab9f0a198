"""Database outage: a private PostgreSQL is stopped in the middle of a load and started again.

While it is down every request answers 503 within a bound (no hanging); once it is back the
same server process recovers by itself, and nothing it acknowledged is lost."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.reliability.conftest import Deployment
from tests.reliability.harness import PrivatePostgres
from tests.reliability.load import DuesLoad, bank_balance_fen, retry_all
from tests.reliability.report import record

OUTAGE_S = 15.0
ANSWER_BOUND_S = 6.0  # a request sent while the database is down is answered within this
RECOVERY_BOUND_S = 60.0  # a deadline for "recovers without a restart", not a measurement
ACKS = 20


def probe(client: httpx.Client, deployment: Deployment, load: DuesLoad) -> tuple[int | None, float]:
    sent = load.send(client, load._new_request())
    with load._lock:
        load.sent.append(sent)
    return sent.status, sent.elapsed_s


@pytest.mark.slow
def test_database_outage(private_pg: PrivatePostgres, private_pg_deployment: Deployment) -> None:
    d = private_pg_deployment
    code = d.tree.base_a
    load = DuesLoad(lambda: d.server.url, d.admin, code, clients=4)
    load.start()
    load.wait_for_acks(ACKS)
    before = len(load.acked())
    assert before > 0, "the load wrote nothing before the outage"

    private_pg.stop("immediate")
    down_at = time.monotonic()
    time.sleep(1.0)  # requests in flight at the stop may take longer; bound the later ones
    during: list[tuple[str, int | None, float]] = []
    with httpx.Client(timeout=60) as client:
        while time.monotonic() - down_at < OUTAGE_S:
            status, elapsed = probe(client, d, load)
            during.append(("write", status, elapsed))
            began = time.monotonic()
            read = client.get(
                f"{d.server.url}/v1/organizations/{code}/roll/summary",
                headers={"Authorization": f"Bearer {d.admin}"},
            )
            during.append(("read", read.status_code, time.monotonic() - began))
        ready = client.get(f"{d.server.url}/readyz")
        assert ready.status_code == 503
        assert client.get(f"{d.server.url}/healthz").status_code == 200

        private_pg.start()
        up_at = time.monotonic()
        outage_s = up_at - down_at
        recovered_at = None
        while time.monotonic() - up_at < RECOVERY_BOUND_S:
            status, _ = probe(client, d, load)
            if status == 201:
                recovered_at = time.monotonic()
                break
            time.sleep(0.2)
        assert recovered_at is not None, "the service did not recover without a restart"
        recovery_s = recovered_at - up_at
        # Reads recover by themselves too, though not always with the first write: the read
        # models' connection pool reconnects with its own backoff, which the outage grew.
        reads_back_at = None
        while time.monotonic() - up_at < RECOVERY_BOUND_S:
            read = client.get(
                f"{d.server.url}/v1/organizations/{code}/statements/balance-sheet",
                params={"as_of": "2030-12-31"},
                headers={"Authorization": f"Bearer {d.admin}"},
            )
            if read.status_code == 200:
                reads_back_at = time.monotonic()
                break
            assert read.status_code == 503, read.text
            time.sleep(0.2)
        assert reads_back_at is not None, "reads did not recover without a restart"
        load.wait_for_acks(ACKS)  # the load goes on after the recovery
    load.stop()

    # The same process served throughout: recovery needed no restart.
    assert d.server.starts == 1 and d.server.process is not None
    assert d.server.process.poll() is None
    assert during, "no request was sent during the outage"
    slow = [
        (i, kind, status, round(s, 2))
        for i, (kind, status, s) in enumerate(during)
        if s > ANSWER_BOUND_S
    ]
    assert not slow, f"answers during the outage took too long: {slow} of {during}"
    assert all(status == 503 for _, status, _ in during), during

    acked = load.acked()
    with httpx.Client(timeout=60) as client:
        stored_fen = bank_balance_fen(client, d.server.url, d.admin, code)
        assert stored_fen >= sum(s.amount_fen for s in acked)  # nothing acknowledged is lost
        outcomes = retry_all(load, load.sent)
        all_fen = sum(s.amount_fen for s in load.sent)
        assert bank_balance_fen(client, d.server.url, d.admin, code) == all_fen
    check = d.processes.rebuild_check()
    assert check.returncode == 0, check.stdout + check.stderr

    record(
        "database_outage",
        {
            "requests": len(load.sent),
            "acknowledged": len(acked),
            "unknown_outcome": len(load.unknown()),
            "outage_s": round(outage_s, 1),
            "requests_during_outage": len(during),
            "max_answer_during_outage_s": round(max(s for _, _, s in during), 2),
            "recovery_after_restart_of_db_s": round(recovery_s, 2),
            "reads_recovery_after_restart_of_db_s": round(reads_back_at - up_at, 2),
            "retried_replayed": outcomes["replayed"],
            "retried_written_now": outcomes["written_now"],
            "acknowledged_lost": 0,
        },
    )
