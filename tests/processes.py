"""Waiting for real processes and sockets without racing them (Linux: reads /proc).

Tests that start servers and kill processes run beside other jobs on a loaded machine, so
nothing here assumes how long anything takes: waits poll the real condition up to a generous
deadline (it only costs time when something is broken), a port is held from the moment it is
chosen, and a pid that disappears or is reaped between two looks is simply gone."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

WAIT_S = 60.0
POLL_S = 0.05


def eventually(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f}s: {what}")
        time.sleep(POLL_S)


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None if there is no such
    process. The name is in parentheses and may itself hold ") ": split at the last one."""
    if pid <= 0:  # 0 and negative numbers name process groups, never a process
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone; or reaped while being read
        return None
    return stat.rsplit(") ", 1)[1].split()


def alive(pid: int) -> bool:
    """A process that exited but was not yet reaped (a zombie) is gone for this purpose."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    """The process's children now; none once it is gone."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children(child)
    return found


def spawned_children(pid: int) -> list[int]:
    """The children multiprocessing started with spawn (multiprocessing's resource tracker
    is not one of them), alive."""
    found = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"spawn_main" in cmdline and alive(child):
            found.append(child)
    return found


def socket_inodes(pid: int) -> set[str]:
    """Inodes of the process's open sockets."""
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return inodes
    for fd in fds:
        try:
            match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue
        if match:
            inodes.add(match.group(1))
    return inodes


def tcp_inodes(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on this local port in this state (/proc/net/tcp: "0A"
    listening, "01" established)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                inodes.add(fields[9])
    return inodes


def listens_on(pid: int, port: int) -> bool:
    """Whether this very process has a socket listening on the port."""
    return bool(socket_inodes(pid) & tcp_inodes(port, "0A"))


def reserve_port() -> socket.socket:
    """A loopback port that is ours until the returned socket is closed.

    Picking a free port and closing it before the server binds it leaves a window in which
    any other process on the machine may take it (and then a test talks to a stranger's
    server, or its own server fails to start). This socket is bound with port 0 (the kernel
    picks an unused port) and SO_REUSEADDR, and never listens: while it is open the kernel
    gives the port to no one else's bind(0) or outgoing connection, and a server told to
    use the port can still bind and listen on it, provided it sets SO_REUSEADDR too (uvicorn,
    `ledger serve` and PostgreSQL do). Keep it open as long as the port must stay ours,
    across restarts of the server too."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    return holder


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (zombies excluded: they hold nothing)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members
