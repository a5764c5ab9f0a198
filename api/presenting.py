"""Personal data on the way out: masked unless the token may see it, and every unmasked read
recorded as an event (个人信息查阅记录) naming the token and the members, never the data.

Masking itself is domain/privacy.py's, the one place that knows what personal data is; every
answer that may hold some (JSON, CSV, XLSX, the audit stream, write answers and their
replays) goes through present() here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.json_answer import JsonAnswer
from api.security import Caller
from domain.privacy import mask
from service.commands import Command, RecordPiiRead
from service.unit_of_work import CommandResult


def _member_ids(value: Any, found: set[str]) -> None:
    """Collects every member_id in value, at any depth."""
    if isinstance(value, dict):
        member_id = value.get("member_id")
        if isinstance(member_id, str):
            found.add(member_id)
        for item in value.values():
            _member_ids(item, found)
    elif isinstance(value, list):
        for item in value:
            _member_ids(item, found)


def shown(
    caller: Caller,
    body: Any,
    member_ids: list[str] | None = None,
    *,
    masker: Callable[[Any], Any] = mask,
) -> tuple[Any, list[str] | None]:
    """What the caller may see of body: masked (by `masker`) unless the token has the pii
    flag; and, when that is an unmasked answer showing anything masking would have hidden,
    the members it names (and `member_ids`), whose read must be recorded before it is
    answered (None: nothing to record)."""
    masked = masker(body)
    if not caller.pii:
        return masked, None
    if masked == body:
        return body, None
    ids: set[str] = set(member_ids or ())
    _member_ids(body, ids)
    return body, sorted(ids)


def present(
    caller: Caller,
    body: Any,
    purpose: str,
    member_ids: list[str] | None = None,
    *,
    masker: Callable[[Any], Any] = mask,
) -> Any:
    """What the caller may see of body (shown), its unmasked read recorded first."""
    answer, read = shown(caller, body, member_ids, masker=masker)
    if read is not None:
        caller.services.ledger.execute(
            RecordPiiRead(purpose=purpose, member_ids=read), actor=caller.actor
        )
    return answer


async def command(
    caller: Caller, command: Command, idempotency: Any, purpose: str, status_code: int
) -> JSONResponse:
    """Executes a command for an async handler and answers as written() does. The handler
    waits for the writer without holding a worker thread; only an unmasked answer (whose
    reading is recorded in the store) is prepared in one."""
    result = await caller.services.ledger.execute_async(
        command, actor=caller.actor, idempotency=idempotency
    )
    if caller.pii:
        return await run_in_threadpool(written, caller, result, purpose, status_code)
    return written(caller, result, purpose, status_code)


def written(caller: Caller, result: CommandResult, purpose: str, status_code: int) -> JSONResponse:
    """A write's answer: its view (masked as needed), its position, and the replay header."""
    body = present(caller, result.body, purpose)
    body = {**body, "position": result.position}
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JsonAnswer(body, status_code=status_code, headers=headers)
