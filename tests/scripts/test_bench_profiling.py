"""The profile summary of `ledger bench --profile` (scripts/bench/profiling.py): samples are
attributed to the process that was sampled, whatever its command line holds, and each
function's share counts a sample once however deep the recursion."""

from __future__ import annotations

from pathlib import Path

from scripts.bench.profiling import render, summarise

PARENT = 'process 10:"python -m scripts.cli serve --workers 2"'
CHILD = (
    'process 11:"python -B -c from multiprocessing.spawn import spawn_main; '
    'spawn_main(tracker_fd=4, pipe_handle=11) --multiprocessing-fork"'
)


def test_samples_go_to_the_sampled_process(tmp_path: Path) -> None:
    collapsed = tmp_path / "phase.txt"
    collapsed.write_text(
        "\n".join(
            [
                f"{PARENT};{CHILD};run (scripts/server/http_processes.py:90);"
                "Server.run (uvicorn/server.py:86);"
                "decide (service/group_commit.py:10) 30",
                f"{PARENT};{CHILD};run (scripts/server/http_processes.py:90);"
                "Server.run (uvicorn/server.py:86);"
                "f (x.py:1);f (x.py:2);f (x.py:1) 10",
                f"{PARENT};<module> (scripts/cli.py:3);serve (scripts/cmd_server.py:60) 5",
                # The writer thread of the HTTP process: no uvicorn frame, same process, same role.
                f"{PARENT};{CHILD};Thread._bootstrap (threading.py:1);"
                "_loop (service/group_commit.py:5) 20",
                "",
            ]
        ),
        encoding="utf-8",
    )
    summary = summarise(collapsed, seconds=1.0)
    child, parent = summary["processes"]
    assert (child["pid"], child["samples"], child["role"]) == (11, 60, "http")
    assert "spawn_main; spawn_main(tracker_fd=4" in child["command"]
    assert child["gil_share"] == 0.6  # 60 samples at 100 Hz in one second
    top = dict(child["top"])
    assert top["Server.run (uvicorn/server.py)"] == 66.7
    assert top["decide (service/group_commit.py)"] == 50.0
    assert top["f (x.py)"] == 16.7  # recursion counted once per sample
    assert (parent["pid"], parent["samples"], parent["role"]) == (10, 5, "server")
    text = render("ingest", summary)
    assert "process 11 (http): 60 samples, GIL held 0.6 of the time" in text
