"""`ledger bench --profile DIR`: where each measurement's time went, sampled with py-spy.

While a measurement runs, one `py-spy record --subprocesses --gil --nonblocking` samples the
bench's own process and every process under it: the load generator, `ledger serve` with its
HTTP and projection processes, a `ledger rebuild` child. Each sample is the stack of the thread
holding the GIL (a thread waiting on the database has released it), so a process's samples over
rate x seconds is the share of the time its Python code ran, at most 1: where a process is
GIL-bound, and what it spends the GIL on. Non-blocking: the processes are never paused, at the
price of an odd torn stack; even so, a profiled run's figures are a little lower.

For each measurement DIR gets the samples as collapsed stacks (`<label>.txt`: open it in
speedscope, or feed it to flamegraph.pl) and a summary (`<label>-summary.txt`); the JSON gets
the summary under details.profiles. py-spy must be installed (`pip install py-spy`, in the
test extra) and allowed to trace processes (root, or kernel.yama.ptrace_scope = 0).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RATE_HZ = 100
TOP_FUNCTIONS = 25
STOP_TIMEOUT_S = 60.0
ATTACH_TIMEOUT_S = 20.0
ATTACHED_LINE = "Sampling process"  # py-spy's first line once it samples
_PROCESS_FRAME = re.compile(r'process (\d+):"([^"]*)";')
_ROLES = (  # (role, a frame only that kind of process runs), the first one found wins
    ("rebuild", "rebuild (projections/reconciliation/rebuild.py"),
    ("projection", "ProjectionWorker"),
    ("http", "uvicorn/server.py"),
    ("server", "scripts/cmd_server.py"),  # `ledger serve`'s parent, supervising
    ("bench", "scripts/bench/harness.py"),
)


class ProfilerUnavailable(RuntimeError):
    pass


def py_spy() -> str:
    """The py-spy executable: beside this Python's, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise ProfilerUnavailable("--profile needs py-spy: pip install py-spy")
    return found


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


class Profiler:
    """Samples the bench and its children during each measurement into out_dir."""

    def __init__(self, out_dir: Path) -> None:
        self.exe = py_spy()
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.summaries: dict[str, Any] = {}

    @contextmanager
    def sampling(self, label: str) -> Iterator[None]:
        path = self.out_dir / f"{_slug(label)}.txt"
        spy = subprocess.Popen(
            [
                self.exe,
                "record",
                "--subprocesses",
                "--gil",
                "--nonblocking",
                "--format",
                "raw",
                "--rate",
                str(RATE_HZ),
                "--pid",
                str(os.getpid()),
                "--output",
                str(path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output = _Output(spy, self.out_dir / f"{_slug(label)}.log")
        attached = output.wait_for(ATTACHED_LINE, ATTACH_TIMEOUT_S)
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            spy.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            try:
                spy.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
            output.close()
            if path.exists():
                summary = summarise(path, seconds=seconds)
                (self.out_dir / f"{_slug(label)}-summary.txt").write_text(
                    render(label, summary), encoding="utf-8"
                )
            elif attached:  # shorter than one sample: py-spy writes no file
                summary = {
                    "seconds": round(seconds, 2),
                    "rate_hz": RATE_HZ,
                    "file": None,
                    "processes": [],
                }
            else:
                summary = {"unavailable": f"py-spy did not start sampling: {output.text()}"}
            self.summaries[label] = summary


class _Output:
    """py-spy's console output, copied to a log file by a thread as it comes."""

    def __init__(self, spy: subprocess.Popen[bytes], log: Path) -> None:
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._log = log.open("w", encoding="utf-8")
        self._thread = threading.Thread(target=self._copy, args=(spy,), daemon=True)
        self._thread.start()

    def _copy(self, spy: subprocess.Popen[bytes]) -> None:
        assert spy.stdout is not None
        for raw in spy.stdout:
            line = raw.decode("utf-8", errors="replace")
            self._log.write(line)
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._lines.append("")  # end of output
            self._changed.notify_all()

    def wait_for(self, text: str, timeout_s: float) -> bool:
        """Whether a line with `text` came within timeout_s (False also if py-spy ended)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                if any(text in line for line in self._lines):
                    return True
                if "" in self._lines:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)

    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)[-500:]

    def close(self) -> None:
        self._thread.join(timeout=STOP_TIMEOUT_S)
        self._log.close()


def _function(frame: str) -> str:
    """'Repository.get (eventsourcing/application.py:262)' -> 'Repository.get
    (eventsourcing/application.py)': a function, whichever line of it was running."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def summarise(path: Path, *, seconds: float, top: int = TOP_FUNCTIONS) -> dict[str, Any]:
    """Per process: its samples, the share of the time it held the GIL, and the functions
    with the largest share of its samples (inclusive: a function and what it called)."""
    samples: Counter[int] = Counter()
    inclusive: dict[int, Counter[str]] = {}
    commands: dict[int, str] = {}
    roles: dict[int, int] = {}  # pid -> rank in _ROLES of the first role it showed
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # The stack starts with the chain of processes down to the sampled one (their
        # command lines may hold ";"), then the functions.
        pid = 0
        while (match := _PROCESS_FRAME.match(stack)) is not None:
            pid = int(match.group(1))
            commands[pid] = match.group(2)[:160]
            stack = stack[match.end() :]
        samples[pid] += count
        seen = {_function(f) for f in stack.split(";")}
        counter = inclusive.setdefault(pid, Counter())
        for function in seen:
            counter[function] += count
        for rank, (_, marker) in enumerate(_ROLES):  # any thread of the process may show it
            if marker in stack and rank < roles.get(pid, len(_ROLES)):
                roles[pid] = rank
    processes = []
    for pid, n in samples.most_common():
        processes.append(
            {
                "pid": pid,
                "role": _ROLES[roles[pid]][0] if pid in roles else "other",
                "command": commands.get(pid, ""),
                "samples": n,
                "gil_share": round(n / (RATE_HZ * seconds), 3) if seconds else None,
                "top": [[f, round(100 * c / n, 1)] for f, c in inclusive[pid].most_common(top)],
            }
        )
    return {
        "seconds": round(seconds, 2),
        "rate_hz": RATE_HZ,
        "file": str(path),
        "processes": processes,
    }


def render(label: str, summary: dict[str, Any]) -> str:
    lines = [
        f"{label}: {summary['seconds']} s sampled at {summary['rate_hz']} Hz ({summary['file']})"
    ]
    for p in summary["processes"]:
        lines.append("")
        lines.append(
            f"process {p['pid']} ({p['role']}): {p['samples']} samples, GIL held "
            f"{p['gil_share']} of the time; {p['command']}"
        )
        lines.extend(f"  {share:5.1f} %  {function}" for function, share in p["top"])
    return "\n".join(lines) + "\n"
