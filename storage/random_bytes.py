"""Random bytes for nonces and ids on the hot paths, drawn from os.urandom a block at a time.

os.urandom lets go of the interpreter lock around its system call. When another thread of the
process is ready to run (the group-commit writer, the event loop, a roster import planning its
rows), the caller then waits for that thread to give the lock back: measured here, 0.7 µs a
call alone and over 300 µs beside one busy thread. A roster import drew a payload nonce per
member that way. Drawing BLOCK_BYTES at once lets go of the lock once per block instead.

The bytes are os.urandom's all the same, each handed out once: slices are taken under a lock,
and a forked child throws its parent's block away (it would otherwise hand out the same bytes
as the parent).
"""

from __future__ import annotations

import os
import threading
from uuid import UUID

BLOCK_BYTES = 64 * 1024


class RandomBytes:
    """Slices of os.urandom blocks, each handed out once, across threads and forks."""

    def __init__(self, block_bytes: int = BLOCK_BYTES) -> None:
        self._block_bytes = block_bytes
        self._lock = threading.Lock()
        self._block = b""
        self._at = 0

    def take(self, count: int) -> bytes:
        if count > self._block_bytes:
            return os.urandom(count)
        with self._lock:
            at = self._at
            if at + count > len(self._block):
                self._block = os.urandom(self._block_bytes)
                at = 0
            self._at = at + count
            return self._block[at : at + count]

    def forget(self) -> None:
        """Drop the block (a forked child must not hand out its parent's bytes again)."""
        self._lock = threading.Lock()  # the parent's may have been held at the fork
        self._block = b""
        self._at = 0


_SOURCE = RandomBytes()
os.register_at_fork(after_in_child=_SOURCE.forget)


def random_bytes(count: int) -> bytes:
    """count bytes from os.urandom, for a nonce or an id."""
    return _SOURCE.take(count)


def random_uuid() -> UUID:
    """A version 4 UUID, as uuid.uuid4() makes it, from the same source."""
    return UUID(bytes=_SOURCE.take(16), version=4)
