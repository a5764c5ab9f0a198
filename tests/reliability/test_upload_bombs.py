"""Upload bombs against a real `ledger serve` process: each is refused (413 or 422) within 2 s,
the server's peak resident memory grows by less than 256 MB while it answers, and nothing is
stored. The peak is the kernel's own high-water mark (VmHWM in /proc/<pid>/status), reset
before each upload by writing 5 to /proc/<pid>/clear_refs, so each figure is one bomb's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Api, Tree, found_tree, person
from tests.api.workbooks import HEADER, NS, inline_row, repeated, sheet_xml, workbook
from tests.conftest import Backend
from tests.reliability.harness import LedgerProcesses, ServerProcess
from tests.reliability.report import record

MB = 1_000_000
MiB = 1024 * 1024
ANSWER_S = 2.0
GROWTH_BYTES = 256 * MB


@dataclass
class Server:
    pid: int
    client: httpx.Client
    admin: str
    tree: Tree
    backend: Backend


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`ledger serve` (one process) on a fresh PostgreSQL database."""
    workdir = tmp_path_factory.mktemp("bombs")
    backend = Backend("postgres", workdir)
    processes = LedgerProcesses(backend.url, workdir, backend.settings.encryption_key)
    process = ServerProcess(processes)
    process.start()
    client = httpx.Client(base_url=process.url, timeout=120)
    try:
        admin = processes.token("admin")
        api = Api(client, {"admin": admin}, Tree(), backend, process)  # type: ignore[arg-type]
        found_tree(api)
        assert process.process is not None
        yield Server(process.process.pid, client, admin, api.tree, backend)
    finally:
        client.close()
        process.stop()
        backend.close()


def memory_kb(pid: int) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {
        k: int(v.split()[0])
        for k, v in (line.split(":", 1) for line in lines)
        if k in ("VmRSS", "VmHWM")
    }


def multipart(code: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="organization_code"\r\n\r\n'
            f'{code}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def upload(server: Server, filename: str, content: bytes) -> tuple[httpx.Response, float, int]:
    """The answer, the seconds from the first byte sent to the answer, and how far the
    server's resident memory rose above where it stood before (bytes)."""
    body, content_type = multipart(server.tree.base_b, filename, content)
    Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = memory_kb(server.pid)["VmRSS"]
    began = time.monotonic()
    response = server.client.post(
        "/v1/members/imports",
        content=body,
        headers={
            "Authorization": f"Bearer {server.admin}",
            "Content-Type": content_type,
            "Idempotency-Key": uuid.uuid4().hex,
        },
    )
    elapsed = time.monotonic() - began
    growth = (memory_kb(server.pid)["VmHWM"] - before) * 1024
    return response, elapsed, growth


def body_room(server: Server, filename: str) -> int:
    """The largest file that fits the server's 64 MiB body cap with the form around it."""
    cap = server.backend.settings.max_import_body_bytes
    return cap - len(multipart(server.tree.base_b, filename, b"")[0])


HEADER_ROW = inline_row(1, HEADER)
VALID_ROWS = inline_row(2, [person(90_001), "王芳", "2020-01-01", "", "否", "否"]) + inline_row(
    3, [person(90_002), "李雷", "2020-01-01", "", "否", "否"]
)


def dimension_bomb() -> bytes:
    """A sheet that declares all of Excel's 1,048,576 × 16,384 cells and has its last cell:
    openpyxl padded every row to the declared width (15 CPU-minutes to read)."""
    last = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    return workbook(sheet_xml(HEADER_ROW + VALID_ROWS + last, "A1:XFD1048576"))


def shared_strings_bomb() -> bytes:
    """One shared string of 100 MiB of one letter: about 100 KB once deflated."""
    head = f'<sst xmlns="{NS}spreadsheetml/2006/main"><si><t>'.encode()
    return workbook(
        sheet_xml(HEADER_ROW + VALID_ROWS), repeated(head, b"A", 100 * MiB, b"</t></si></sst>")
    )


def sheet_bomb() -> bytes:
    """A sheet of 1 GiB, nearly all blanks between two rows: about 1 MB once deflated."""
    head = sheet_xml(HEADER_ROW).replace(b"</sheetData></worksheet>", b"")
    return workbook(
        repeated(head, b" ", 1024 * MiB, VALID_ROWS.encode() + b"</sheetData></worksheet>")
    )


def element_bomb() -> bytes:
    """1.5 million small elements after the rows, each different (deflate shrinks the sheet
    only 5 times): openpyxl keeps every one, some 300 bytes each."""
    elements = "".join(f'<a b="{n * 7919 % 1_000_003}"/>' for n in range(1_500_000))
    rows = HEADER_ROW + VALID_ROWS + f"</sheetData><x>{elements}</x><sheetData>"
    return workbook(sheet_xml(rows))


def comma_csv(room: int) -> bytes:
    return b"," * room


def endless_line_csv(room: int) -> bytes:
    return b"x" * room


def blank_rows_csv(room: int) -> bytes:
    head = (",".join(HEADER) + "\r\n").encode()
    return head + b",\r\n" * ((room - len(head)) // 3)


BOMBS: dict[str, tuple[str, Callable[[int], bytes]]] = {
    "xlsx_declared_dimension": ("bomb.xlsx", lambda _: dimension_bomb()),
    "xlsx_shared_strings_100kb": ("bomb.xlsx", lambda _: shared_strings_bomb()),
    "xlsx_zip_bomb_member": ("bomb.xlsx", lambda _: sheet_bomb()),
    "xlsx_million_elements": ("bomb.xlsx", lambda _: element_bomb()),
    "csv_64mib_of_commas": ("bomb.csv", comma_csv),
    "csv_one_endless_line": ("bomb.csv", endless_line_csv),
    "csv_millions_of_blank_rows": ("bomb.csv", blank_rows_csv),
}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_bomb_is_refused_quickly_in_bounded_memory(server: Server, bomb: str) -> None:
    filename, build = BOMBS[bomb]
    content = build(body_room(server, filename))
    ledger = server.backend.open()
    head = ledger.head_position()
    response, elapsed, growth = upload(server, filename, content)
    record(
        "upload_bomb",
        {
            "bomb": bomb,
            "upload_bytes": len(content),
            "detail": response.json().get("detail"),
            "status": response.status_code,
            "answer_s": round(elapsed, 3),
            "peak_rss_growth_mb": round(growth / MB, 1),
        },
    )
    assert response.status_code in (413, 422), response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["detail"].startswith("file: "), problem
    assert elapsed < ANSWER_S, f"{bomb} answered in {elapsed:.2f} s"
    assert growth < GROWTH_BYTES, f"{bomb} grew the server by {growth / MB:.0f} MB"
    assert ledger.head_position() == head  # nothing stored
