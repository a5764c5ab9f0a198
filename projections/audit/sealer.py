"""The server seals by itself (自动封印): at least every interval while events arrive.

Where it runs: in the server's one catch-up loop (projections/read_models/worker.py), which `ledger
serve` runs in its projection process beside the HTTP processes
(scripts/server/projection_process.py), and an app hosted otherwise runs in a thread of its process
(api/services.py). `ledger project` runs the same loop without a sealer: the servers seal. Whether
a seal is due is decided again under the chain lock from the store's own latest seal
(AuditTrail.seal), so several servers on one database still make one seal per interval between them.

Month closes seal too: the close's HTTP route seals once the close is stored
(api/routers/funds.py).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

from projections.audit.trail import AuditTrail, utc_now

log = logging.getLogger(__name__)

# How often the loop asks whether a seal is due (two cheap queries): a seal is at most this
# late, and an idle server asks the database nothing more often.
CHECK_EVERY_S = 60


class AutoSealer:
    def __init__(
        self,
        trail: AuditTrail,
        *,
        interval_s: int,
        check_every_s: float = CHECK_EVERY_S,
        clock: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        self.trail = trail
        self.interval = datetime.timedelta(seconds=interval_s)
        self.check_every = datetime.timedelta(seconds=check_every_s)
        self.clock = clock
        self._next_check: datetime.datetime | None = None

    def tick(self) -> dict[str, Any] | None:
        """Seals if one is due; the seal made, or None. Failures are logged, never raised:
        the loop it runs in keeps the read models current whatever happens here."""
        now = self.clock()
        if self._next_check is not None and now < self._next_check:
            return None
        self._next_check = now + self.check_every
        try:
            if not self.trail.seal_due(now, self.interval):
                return None
            made = self.trail.seal(now=now, only_if_older_than=self.interval)
        except Exception as exc:  # a refused seal (ChainContradictsSeal), a key, the database
            log.error("automatic sealing failed: %s", exc)
            return None
        if made is not None:
            log.info("sealed the audit chain through position %s", made["position"])
        return made
