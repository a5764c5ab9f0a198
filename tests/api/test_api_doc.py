"""docs/api.md lists exactly the routes the application serves: none it does not, and none
left out."""

from __future__ import annotations

import re
from pathlib import Path

from api.app import create_app
from storage.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ROW = re.compile(r"^\| `(GET|POST)(?: ([^`]+))?`")


def documented() -> set[tuple[str, str]]:
    found = set()
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## Not served yet"):
            break
        match = ROW.match(line)
        if match:
            # "`GET /docs`, `GET /openapi.json`" names two.
            for method, path in re.findall(r"`(GET|POST) ([^`]+)`", line.split("|")[1]):
                found.add((method, path))
    return found


def served() -> set[tuple[str, str]]:
    """Every operation of the OpenAPI document, and the document with its page."""
    spec = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
    operations = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}
    return operations | {("GET", "/docs"), ("GET", "/openapi.json")}


def test_the_api_doc_lists_the_routes_served() -> None:
    assert documented() == served()
