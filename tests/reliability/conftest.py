"""Deployments for the reliability scenarios: `ledger serve` as a subprocess on a fresh
PostgreSQL database (the shared server, or a private cluster that may be stopped), founded
through the API with tokens minted by `ledger token create`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Api, Tree, api, found_tree
from tests.conftest import _pg_base, create_pg_database, drop_pg_database
from tests.reliability.harness import LedgerProcesses, PrivatePostgres, ServerProcess

__all__ = ["api"]  # the in-thread server on each backend, reused from tests/api


@dataclass
class Deployment:
    processes: LedgerProcesses
    server: ServerProcess
    api: Api
    tree: Tree

    @property
    def admin(self) -> str:
        return self.api.tokens["admin"]


def open_deployment(database_url: str, workdir: Path) -> Deployment:
    processes = LedgerProcesses(database_url, workdir)
    server = ServerProcess(processes)
    try:
        server.start()
        tree = Tree()
        client = httpx.Client(base_url=server.url, timeout=60)
        api = Api(client, {"admin": processes.token("admin")}, tree, None, server)  # type: ignore[arg-type]
        found_tree(api)
    except BaseException:
        server.close()
        raise
    return Deployment(processes, server, api, tree)


def close_deployment(deployment: Deployment) -> None:
    deployment.api.client.close()
    deployment.server.close()


@pytest.fixture
def shared_pg_deployment(tmp_path: Path) -> Iterator[Deployment]:
    """On a fresh database of the machine's shared PostgreSQL (never stopped)."""
    name = create_pg_database()
    deployment = open_deployment(f"{_pg_base()}/{name}", tmp_path)
    try:
        yield deployment
    finally:
        close_deployment(deployment)
        drop_pg_database(name)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def private_pg_deployment(private_pg: PrivatePostgres, tmp_path: Path) -> Iterator[Deployment]:
    name = f"ledger_{uuid.uuid4().hex[:8]}"
    private_pg.create_database(name)
    deployment = open_deployment(private_pg.url(name), tmp_path)
    try:
        yield deployment
    finally:
        close_deployment(deployment)
