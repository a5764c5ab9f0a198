"""Several server processes on one database: `ledger serve` in a subprocess beside the
in-process server. Read-your-writes and idempotency hold whichever process answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Api
from tests.reliability.harness import LedgerProcesses, ServerProcess

LEDGER = str(Path(sys.executable).with_name("ledger"))


def ledger_env(api: Api) -> dict[str, str]:
    settings = api.backend.settings
    return {
        **os.environ,
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_ENCRYPTION_KEY": settings.encryption_key or "",
    }


@pytest.fixture(scope="module")
def other(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A second server process started with `ledger serve` (on a port held for it, ready
    once it listens and answers: tests/reliability/harness.py)."""
    settings = api.backend.settings
    processes = LedgerProcesses(
        settings.database_url, tmp_path_factory.mktemp("serve"), settings.encryption_key
    )
    with ServerProcess(processes) as server:
        server.start()
        client = httpx.Client(base_url=server.url, timeout=60)
        try:
            yield client
        finally:
            client.close()
            # The other process's log, shown by pytest when a test here fails.
            print(server.log_tail())


def test_read_your_writes_across_processes(api: Api, other: httpx.Client) -> None:
    auth = api.headers("east_clerk")
    for _ in range(5):
        member = api.join(api.tree.base_b, token="east_clerk")
        roll = other.get(
            f"/v1/organizations/{api.tree.base_b}/roll",
            params={"as_of": "2030-01-01", "page_size": 1000},
            headers=auth,
        )
        assert roll.status_code == 200, roll.text
        assert member["member_id"] in [m["member_id"] for m in roll.json()["items"]]
        history = other.get(f"/v1/members/{member['member_id']}/history", headers=auth)
        assert [h["change_code"] for h in history.json()["items"]] == [1]
        # and the other way round
        written = other.post(
            "/v1/members",
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "id_number": api.next_person(),
                "name": "韩梅梅",
                "organization_code": api.tree.base_b,
                "joined_on": "2021-01-01",
            },
        )
        assert written.status_code == 201, written.text
        corrected = api.post(
            f"/v1/members/{member['member_id']}/corrections",
            {"name": f"李雷{len(member['member_id'])}"},
            token="east_clerk",
        )
        seen = other.get(f"/v1/members/{member['member_id']}", headers=auth).json()
        assert seen["name"] == corrected.json()["name"]
        summary = api.get(
            f"/v1/organizations/{api.tree.base_b}/roll/changes",
            params={"from": "2021-01-01", "to": "2021-01-01"},
            token="east_clerk",
        )
        assert written.json()["member_id"] in [c["member_id"] for c in summary.json()["items"]]


def test_idempotency_is_shared_by_processes(api: Api, other: httpx.Client) -> None:
    body = {
        "organization_code": api.tree.base_b,
        "period": "2024-08",
        "amount": "33.00",
        "received_on": "2024-08-08",
    }
    key = f"dues-{uuid.uuid4().hex}"
    first = api.post("/v1/funds/dues", body, key=key, token="east_clerk")
    assert first.status_code == 201
    again = other.post("/v1/funds/dues", json=body, headers=api.headers("east_clerk", key))
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # Racing duplicates on two processes: exactly one voucher is written.
    key = f"race-{uuid.uuid4().hex}"

    def send(client: httpx.Client) -> httpx.Response:
        return client.post("/v1/funds/dues", json=body, headers=api.headers("east_clerk", key))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, [api.client, other] * 4))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["voucher_id"] for a in answers}) == 1
    assert sum(1 for a in answers if "Idempotent-Replayed" not in a.headers) == 1


def test_token_create_command(api: Api, tmp_path: Path) -> None:
    run = subprocess.run(
        [LEDGER, "token", "create", "--role", "auditor", "--organization", api.tree.west, "--pii"],
        env=ledger_env(api),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip().splitlines()[-1]
    assert "." in token and " " not in token
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        api.client.get(f"/v1/organizations/{api.tree.base_w}", headers=headers).status_code == 200
    )
    assert (
        api.client.get(f"/v1/organizations/{api.tree.base_a}", headers=headers).status_code == 403
    )
    bad = subprocess.run(
        [
            LEDGER,
            "token",
            "create",
            "--role",
            "admin",
            "--organization",
            api.tree.base_a[:-1] + "0",
        ],
        env=ledger_env(api),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    wrong_role = subprocess.run(
        [LEDGER, "token", "create", "--role", "boss"],
        env=ledger_env(api),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong_role.returncode != 0


def test_a_revoked_token_is_refused_by_every_process_within_5_s(
    api: Api, other: httpx.Client, tmp_path: Path
) -> None:
    created = subprocess.run(
        [LEDGER, "token", "create", "--role", "clerk"],
        env=ledger_env(api),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/v1/organizations/{api.tree.base_a}"
    clients = {"in-process server": api.client, "ledger serve": other}
    for name, client in clients.items():
        # Twice: the second answer comes from what the process remembers of the token.
        for _ in range(2):
            assert client.get(path, headers=headers).status_code == 200, name
    token_id = str(uuid.UUID(hex=token.partition(".")[0]))
    revoked = subprocess.run(
        [LEDGER, "token", "revoke", token_id],
        env=ledger_env(api),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 5.0
    refused: set[str] = set()
    while len(refused) < len(clients) and time.monotonic() < deadline:
        for name, client in clients.items():
            if name not in refused and client.get(path, headers=headers).status_code == 401:
                refused.add(name)
        time.sleep(0.05)  # a polling interval, not a synchronisation: the deadline decides
    assert refused == set(clients), f"accepted 5 s after revocation: {set(clients) - refused}"
    # And it stays refused, on the POST short path too.
    written = other.post(
        "/v1/members",
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "id_number": api.next_person(),
            "name": "韩梅梅",
            "organization_code": api.tree.base_b,
            "joined_on": "2021-01-01",
        },
    )
    assert written.status_code == 401
