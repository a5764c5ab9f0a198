"""Writes beside the province's roll pages (`ledger bench --province-scale`): members join the
province's base unions at a steady rate, and the read models catch up every tenth of a
second, as the server's HTTP and projection processes would, until SIGTERM. Every batch the
projection commits is a new version of the read models, which a roll page must follow.

Run as a child process of the bench, on the store its LEDGER_* environment names:
`python -m scripts.bench.province_writes RATE`. It prints "ready" once its first join is
projected, and at the end one JSON line: the joins written and refused, the catch-ups that
projected events, and the projection's position before and after.
"""

from __future__ import annotations

import datetime
import json
import signal
import sys
import time
from typing import Any

from domain.errors import DomainError
from projections.read_models.models import ReadModels
from scripts.common import open_ledger
from scripts.demo_data import DEMO_YEAR
from scripts.synthetic import id_number
from service.commands import JoinMember

CATCH_UP_EVERY_S = 0.1
# People the demo never draws: born in the 1940s, registered in Beijing's Dongcheng district.
REGION = "110101"
BORN_FROM = datetime.date(1940, 1, 1)


def newcomer(n: int) -> str:
    """The n-th joiner's identity number: distinct for every n below 3,650,000."""
    return id_number(REGION, BORN_FROM + datetime.timedelta(days=n // 1000), n)


def write_until_stopped(rate: float) -> dict[str, Any]:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    ledger = open_ledger()
    read_models = ReadModels(ledger)
    try:
        read_models.catch_up()
        with read_models.store.reader() as cur:
            cur.execute(
                f"SELECT code FROM {read_models.tables.table('organizations')}"
                " WHERE level = 'base' ORDER BY code"
            )
            bases = [code for (code,) in cur.fetchall()]
        first = read_models.position()
        done = {"joins": 0, "refused": 0, "catch_ups_with_events": 0}

        def join(n: int) -> None:
            try:
                ledger.execute(
                    JoinMember(
                        id_number=newcomer(n),
                        name="新会员",
                        organization_code=bases[n * 7919 % len(bases)],
                        # Spread over the year, so the rows land all over the roll's order.
                        joined_on=datetime.date(DEMO_YEAR, 1 + n % 12, 1 + n % 28),
                    )
                )
                done["joins"] += 1
            except DomainError:
                done["refused"] += 1

        def catch_up() -> None:
            before = read_models.position()
            done["catch_ups_with_events"] += read_models.catch_up() > before

        # One join projected before the reads start, so that they never read a still store.
        join(0)
        catch_up()
        print("ready", flush=True)
        n = 1
        next_join = next_catch_up = time.monotonic()
        while not stopping:
            now = time.monotonic()
            if now >= next_join:
                join(n)
                n += 1
                next_join += 1 / rate
            if now >= next_catch_up:
                catch_up()
                next_catch_up += CATCH_UP_EVERY_S
            time.sleep(max(0.0, min(next_join, next_catch_up) - time.monotonic()))
        done["positions"] = [first, read_models.position()]
        return done
    finally:
        read_models.close()
        ledger.close()


if __name__ == "__main__":
    print(json.dumps(write_until_stopped(float(sys.argv[1]))), flush=True)
