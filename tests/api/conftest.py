"""The API under test: a real uvicorn server on a free port, on each backend, with a small
deployment founded through the API itself and tokens of every role."""

from __future__ import annotations

import datetime
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from scripts.synthetic import employer_code, id_number, union_code
from service.tokens import Tokens
from storage.settings import Settings
from tests.conftest import BACKENDS, Backend

ROOT_REGION, EAST_REGION, WEST_REGION = "110000", "110105", "110108"
FOUNDED_ON = "2000-01-01"
SHARES = {
    "base": "60",
    "township": "5",
    "county": "15",
    "city": "10",
    "province": "5",
    "national": "5",
}


class ServerThread:
    """uvicorn serving the real application in a background thread."""

    START_TIMEOUT_S = 60

    def __init__(self, settings: Settings, *, short_path: bool = True) -> None:
        # Bound here to port 0 and handed to uvicorn, which listens on this very socket: the
        # port is ours from the start (picking a free port for uvicorn to bind later leaves
        # a window in which another process on the machine may take it).
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(settings, short_path=short_path), log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while not self.server.started:  # set once the app started and the socket listens
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.socket.close()


def person(n: int, region: str = EAST_REGION) -> str:
    birth = datetime.date(1970, 1, 1) + datetime.timedelta(days=11 * n)
    return id_number(region, birth, n)


@dataclass
class Tree:
    """北京市总工会 > 朝阳区总工会 (east) > 甲, 乙 base unions; > 海淀区总工会 (west) > 丙."""

    root: str = union_code(ROOT_REGION, 1, base=False)
    east: str = union_code(EAST_REGION, 2, base=False)
    west: str = union_code(WEST_REGION, 3, base=False)
    base_a: str = union_code(EAST_REGION, 4, base=True)
    base_b: str = union_code(EAST_REGION, 5, base=True)
    base_w: str = union_code(WEST_REGION, 6, base=True)
    employer_a: str = employer_code(EAST_REGION, 4)
    employer_b: str = employer_code(EAST_REGION, 5)
    employer_w: str = employer_code(WEST_REGION, 6)


@dataclass
class Api:
    """An HTTP client that names its token by role key and sends a fresh Idempotency-Key."""

    client: httpx.Client
    tokens: dict[str, str]
    tree: Tree
    backend: Backend
    server: ServerThread
    people: list[int] = field(default_factory=lambda: [100])

    def headers(self, token: str | None, key: str | None = None) -> dict[str, str]:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(token, token)}"
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        token: str | None = "admin",
        key: str | None = "auto",
        **kwargs: Any,
    ) -> httpx.Response:
        key = uuid.uuid4().hex if key == "auto" else key
        if body is not None:
            kwargs["json"] = body
        return self.client.post(
            path, headers={**self.headers(token, key), **kwargs.pop("headers", {})}, **kwargs
        )

    def get(self, path: str, *, token: str | None = "admin", **kwargs: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers(token), **kwargs)

    def next_person(self, region: str = EAST_REGION) -> str:
        self.people[0] += 1
        return person(self.people[0], region)

    def join(self, org: str | None = None, *, token: str = "admin", **extra: Any) -> dict:
        body = {
            "id_number": self.next_person(),
            "name": "王芳",
            "organization_code": org or self.tree.base_a,
            "joined_on": "2020-05-01",
            "mobile": "13812345678",
            **extra,
        }
        response = self.post("/v1/members", body, token=token)
        assert response.status_code == 201, response.text
        return response.json()


def found_tree(api: Api) -> None:
    t = api.tree
    specs = [
        (t.root, "北京市总工会", "province", None, ROOT_REGION, None),
        (t.east, "朝阳区总工会", "county", t.root, EAST_REGION, None),
        (t.west, "海淀区总工会", "county", t.root, WEST_REGION, None),
        (t.base_a, "北京星火科技有限公司工会委员会", "base", t.east, EAST_REGION, t.employer_a),
        (t.base_b, "北京顺达物流有限公司工会委员会", "base", t.east, EAST_REGION, t.employer_b),
        (t.base_w, "北京中关村软件园工会委员会", "base", t.west, WEST_REGION, t.employer_w),
    ]
    for code, name, level, parent, region, employer in specs:
        body = {
            "code": code,
            "name": name,
            "level": level,
            "parent_code": parent,
            "region_code": region,
            "founded_on": FOUNDED_ON,
        }
        if employer:
            body |= {"employer_code": employer, "employee_count": 200}
        response = api.post("/v1/organizations", body)
        assert response.status_code == 201, response.text
    response = api.post(
        "/v1/levy-policies", {"region_code": "11", "effective_from": FOUNDED_ON, "shares": SHARES}
    )
    assert response.status_code == 201, response.text


TOKEN_SPECS = {
    "admin_pii": ("admin", "", True),
    "clerk": ("clerk", "", False),
    "auditor": ("auditor", "", False),
    "east_admin": ("admin", "east", False),
    "east_clerk": ("clerk", "east", False),
    "east_clerk_pii": ("clerk", "east", True),
    "east_auditor": ("auditor", "east", False),
    "a_clerk": ("clerk", "base_a", False),
    "west_clerk": ("clerk", "west", False),
    "west_auditor": ("auditor", "west", False),
}


def mint_tokens(tokens: Tokens, tree: Tree) -> dict[str, str]:
    """Every role at every scope the tests need (the tree must exist: scopes are checked)."""
    return {
        name: tokens.mint(
            role=role, organization_code=getattr(tree, org) if org else None, pii=pii
        )[1]
        for name, (role, org, pii) in TOKEN_SPECS.items()
    }


def _open_api(kind: str, tmp: Path, *, short_path: bool = True) -> Iterator[Api]:
    backend = Backend(kind, tmp)
    server = ServerThread(backend.settings, short_path=short_path).start()
    tree = Tree()
    tokens = Tokens(backend.open())
    client = httpx.Client(base_url=server.url, timeout=120)
    api = Api(client, {"admin": tokens.mint(role="admin")[1]}, tree, backend, server)
    try:
        found_tree(api)
        api.tokens |= mint_tokens(tokens, tree)
        yield api
    finally:
        client.close()
        server.stop()
        backend.close()


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One deployment per test module and backend; tests add their own members and vouchers."""
    yield from _open_api(request.param, tmp_path_factory.mktemp(f"api-{request.param}"))
