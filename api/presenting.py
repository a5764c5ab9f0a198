"""Personal data on the way out: masked unless the token may see it, and every unmasked read
recorded as an event (个人信息查阅记录) naming the token and the members, never the data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.security import Caller
from domain.identity import mask_id_number, mask_mobile
from service.application import CommandResult
from service.pii_reads import record_pii_read

_MASKS = {
    "id_number": lambda v: mask_id_number(v) if isinstance(v, str) and len(v) == 18 else v,
    "mobile": lambda v: mask_mobile(v) if isinstance(v, str) and len(v) >= 7 else v,
}


def mask(value: Any) -> Any:
    """A copy of value with every id_number and mobile masked, at any depth."""
    if isinstance(value, dict):
        return {k: _MASKS[k](v) if k in _MASKS else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def _personal(value: Any, member_ids: set[str]) -> bool:
    """Whether value holds personal data; collects the member ids it belongs to."""
    found = False
    if isinstance(value, dict):
        if any(value.get(k) for k in _MASKS):
            found = True
            if isinstance(value.get("member_id"), str):
                member_ids.add(value["member_id"])
        for v in value.values():
            found = _personal(v, member_ids) or found
    elif isinstance(value, list):
        for v in value:
            found = _personal(v, member_ids) or found
    return found


def present(caller: Caller, body: Any, purpose: str, member_ids: list[str] | None = None) -> Any:
    """What the caller may see of body. An unmasked answer with personal data is recorded."""
    if not caller.pii:
        return mask(body)
    ids: set[str] = set(member_ids or ())
    if _personal(body, ids):
        record_pii_read(
            caller.services.ledger, actor=caller.actor, purpose=purpose, member_ids=sorted(ids)
        )
    return body


async def command(caller: Caller, call: Callable[[], CommandResult], purpose: str,
                  status_code: int) -> JSONResponse:
    """Runs a one-command ledger method for an async handler and answers as written() does.
    The handler waits for the writer without holding a worker thread; only an unmasked answer
    (whose reading is recorded in the store) is prepared in one."""
    result = await caller.services.ledger.run_async(call)
    if caller.pii:
        return await run_in_threadpool(written, caller, result, purpose, status_code)
    return written(caller, result, purpose, status_code)


def written(caller: Caller, result: CommandResult, purpose: str, status_code: int) -> JSONResponse:
    """A write's answer: its view (masked as needed), its position, and the replay header."""
    body = present(caller, result.body, purpose)
    body = {**body, "position": result.position}
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(body, status_code=status_code, headers=headers)
