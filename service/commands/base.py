"""What a command is: a request to change the ledger, as a value, and the decision it makes.

A command carries its arguments exactly as a client sent them (the domain parses and checks
them while deciding, so that every refusal is a named domain error). `decide(uow)` is the whole
effect of the command: it gets the aggregates it needs from the unit of work, calls their
methods, and returns the answer the caller will see, as the eventsourcing examples' command
methods do. The application (service/application.py) hands every command to its one writer,
which decides it on fresh state and saves what it changed in one atomic write.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar
from uuid import UUID

from service.unit_of_work import UnitOfWork
from storage.keys import MemberIds


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Command:
    # The command's stable name: idempotency records and request fingerprints name it, so it
    # never changes once stored (it is what the method of the same name was called).
    NAME: ClassVar[str]

    @property
    def command_name(self) -> str:
        """The name stored with the command's idempotency record and in its fingerprint."""
        return self.NAME

    def request(self) -> dict[str, Any]:
        """What a retry must repeat to be the same request (the fingerprint's input)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def may_create(self, member_ids: MemberIds) -> tuple[UUID, ...]:
        """Aggregates the command will look for that may not exist yet (a joining person's
        member id): the writer finds out which exist for a whole batch in one query."""
        return ()

    def will_read(self) -> tuple[UUID, ...]:
        """Members the command will read, named in its arguments (those a dues receipt
        lists): the writer reads those of a whole batch that it does not hold in one query,
        instead of one each. Only a hint: ids that name nothing, or no member, are read as
        the command's decision finds them."""
        return ()

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        raise NotImplementedError
