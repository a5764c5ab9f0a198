"""Personal data on the way out: masked unless the token may see it, and every unmasked read
recorded as an event (个人信息查阅记录) naming the token and the members, never the data.

Masking itself is domain/privacy.py's, the one place that knows what personal data is; every
answer that may hold some (JSON, CSV, XLSX, the audit stream, write answers and their
replays) goes through shown() here: through present() for reads, which records an unmasked
read as a write of its own, and through command() for writes, whose unmasked first answer is
recorded in the command's own write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse

from api.json_answer import JsonAnswer
from api.security import Caller
from domain.privacy import mask, revealed_members
from service.commands import Command, RecordPiiRead


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
    return body, revealed_members(body, masked, member_ids or ())


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
    """Executes a command for an async handler and answers with its view (masked unless the
    token has the pii flag), its position and the replay header, without holding a worker
    thread. An unmasked first answer's read is recorded in the command's own write
    (Ledger.attempt); an unmasked replay is another read, recorded before it is answered."""
    ledger = caller.services.ledger
    result = await ledger.execute_async(
        command,
        actor=caller.actor,
        idempotency=idempotency,
        pii_read_purpose=purpose if caller.pii else None,
    )
    if caller.pii and not result.replayed:
        body = result.body  # shown as it is: its read was recorded with the command
    else:
        body, read = shown(caller, result.body)
        if read is not None:  # an unmasked replay: another read
            await ledger.execute_async(
                RecordPiiRead(purpose=purpose, member_ids=read), actor=caller.actor
            )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JsonAnswer(
        {**body, "position": result.position}, status_code=status_code, headers=headers
    )
