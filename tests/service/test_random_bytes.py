"""Random bytes for nonces and ids (storage/random_bytes.py): os.urandom's bytes, drawn a block
at a time, each handed out once, across threads and to a forked child."""

from __future__ import annotations

import itertools
import os
import threading
import uuid

import pytest

from storage import random_bytes
from storage.random_bytes import RandomBytes


@pytest.fixture
def counting_urandom(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """os.urandom giving 0, 1, 2, ... (mod 256 per byte, as a run of 4-byte counters), so
    that a byte handed out twice shows as a repeated slice. Returns the block sizes asked."""
    asked: list[int] = []
    counter = itertools.count()

    def fake(n: int) -> bytes:
        asked.append(n)
        return b"".join(next(counter).to_bytes(4, "big") for _ in range(n // 4))

    monkeypatch.setattr(random_bytes.os, "urandom", fake)
    return asked


def test_slices_are_taken_in_turn_and_a_new_block_drawn_when_one_runs_out(counting_urandom):
    source = RandomBytes(block_bytes=64)
    taken = [source.take(12) for _ in range(10)]
    assert all(len(t) == 12 for t in taken)
    assert len(set(taken)) == 10
    assert counting_urandom == [64, 64]  # five slices of 12 in a block of 64, then another
    assert b"".join(taken[:5]) == b"".join(i.to_bytes(4, "big") for i in range(15))


def test_more_than_a_block_comes_straight_from_urandom(counting_urandom):
    source = RandomBytes(block_bytes=64)
    assert len(source.take(100)) == 100
    assert counting_urandom == [100]


def test_threads_never_share_a_slice(counting_urandom):
    source = RandomBytes(block_bytes=4096)
    taken: list[list[bytes]] = [[] for _ in range(8)]

    def take_many(out: list[bytes]) -> None:
        for _ in range(2000):
            out.append(source.take(16))

    threads = [threading.Thread(target=take_many, args=(out,)) for out in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [b for out in taken for b in out]
    assert len(set(every)) == len(every) == 16_000


def test_a_forked_child_does_not_hand_out_its_parents_bytes():
    random_bytes.random_bytes(12)  # the parent's block is drawn
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.write(write_end, random_bytes.random_bytes(12))
        finally:
            os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 12)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 12
    assert child != random_bytes.random_bytes(12)  # the parent's next slice


def test_random_uuids_are_version_4():
    ids = {random_bytes.random_uuid() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
