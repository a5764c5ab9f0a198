"""Concurrent clients that record, for every write they sent, whether it was acknowledged.

Each request is a dues receipt of a distinct amount (in fen) with its own Idempotency-Key, so
the union's bank balance tells exactly which receipts are stored, and how many times: a receipt
stored twice would show in the sum. Outcomes: `acked` (201: the server promised it is durable),
`refused` (a 4xx answer: nothing written) and `unknown` (no answer, 503 or a 5xx: it may or may
not have been written before the failure)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

REQUEST_TIMEOUT_S = 60.0
ACKS_WAIT_S = 120.0


@dataclass
class Sent:
    key: str
    body: dict[str, Any]
    amount_fen: int
    status: int | None = None  # None: no answer at all
    elapsed_s: float = 0.0
    response: dict[str, Any] | None = None
    replayed: bool = False

    @property
    def acked(self) -> bool:
        return self.status == 201

    @property
    def unknown(self) -> bool:
        return self.status is None or self.status >= 500


@dataclass
class DuesLoad:
    """Receipts into one union's books: amount_fen = 100 + a per-run sequence number."""

    url_of: Any  # a callable giving the current server URL (it changes across restarts)
    token: str
    organization_code: str
    clients: int = 6
    sent: list[Sent] = field(default_factory=list)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _new_request(self) -> Sent:
        with self._lock:
            self._next += 1
            amount_fen = 100 + self._next
        body = {
            "organization_code": self.organization_code,
            "period": "2024-05",
            "amount": str(Decimal(amount_fen) / 100),
            "received_on": "2024-05-20",
        }
        return Sent(key=uuid.uuid4().hex, body=body, amount_fen=amount_fen)

    def send(self, client: httpx.Client, sent: Sent) -> Sent:
        began = time.monotonic()
        try:
            response = client.post(
                self.url_of() + "/v1/funds/dues",
                json=sent.body,
                headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": sent.key},
            )
            sent.status = response.status_code
            sent.replayed = response.headers.get("Idempotent-Replayed") == "true"
            if response.headers.get("content-type", "").startswith("application/"):
                sent.response = response.json()
        except httpx.HTTPError:
            sent.status = None
        sent.elapsed_s = time.monotonic() - began
        return sent

    def _client_loop(self) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            while not self._stop.is_set():
                sent = self._new_request()
                with self._lock:
                    self.sent.append(sent)
                self.send(client, sent)
                if sent.status is None or sent.status == 503:
                    self._stop.wait(0.25)  # the server is away: do not spin

    def start(self) -> None:
        for i in range(self.clients):
            thread = threading.Thread(target=self._client_loop, name=f"load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 5)
        assert not any(t.is_alive() for t in self._threads), "a load client hung"

    def acked(self) -> list[Sent]:
        return [s for s in self.sent if s.acked]

    def wait_for_acks(self, more: int, timeout_s: float = ACKS_WAIT_S) -> None:
        """Until `more` writes beyond those acknowledged so far are acknowledged: the
        clients are writing now, however slow the machine is."""
        target = len(self.acked()) + more
        deadline = time.monotonic() + timeout_s
        while len(self.acked()) < target:
            assert time.monotonic() < deadline, (
                f"fewer than {more} writes acknowledged within {timeout_s:.0f}s"
            )
            self._stop.wait(0.05)

    def unknown(self) -> list[Sent]:
        return [s for s in self.sent if s.unknown]

    def refused(self) -> list[Sent]:
        return [s for s in self.sent if s.status is not None and 400 <= s.status < 500]


def bank_balance_fen(client: httpx.Client, url: str, token: str, code: str) -> int:
    """The union's bank account (102) from the balance sheet read model."""
    response = client.get(
        f"{url}/v1/organizations/{code}/statements/balance-sheet",
        params={"as_of": "2030-12-31"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    for line in response.json()["lines"]:
        if line["account_code"] == "102":
            return int(Decimal(line["amount"]) * 100)
    return 0


def retry_all(load: DuesLoad, sent: list[Sent]) -> dict[str, int]:
    """Sends every request again with its original key and body; counts what came back."""
    outcomes = {"replayed": 0, "written_now": 0}
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for original in sent:
            again = load.send(client, Sent(original.key, original.body, original.amount_fen))
            assert again.status == 201, (again.status, again.response)
            if original.acked:
                # An acknowledged write is answered again, not written again.
                assert again.response == original.response
                assert again.replayed
            # A third send is always a replay of whatever the second found or wrote.
            third = load.send(client, Sent(original.key, original.body, original.amount_fen))
            assert third.status == 201 and third.replayed and third.response == again.response
            outcomes["replayed" if again.replayed else "written_now"] += 1
    return outcomes
