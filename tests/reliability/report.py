"""The figures the scenarios measured, for the closing note: one JSON line per scenario in
$LEDGER_RELIABILITY_FIGURES (default: reliability-figures.jsonl in the temp directory),
and printed (pytest -s shows them)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def figures_path() -> Path:
    default = Path(tempfile.gettempdir()) / "reliability-figures.jsonl"
    return Path(os.environ.get("LEDGER_RELIABILITY_FIGURES", default))


def record(scenario: str, figures: dict[str, Any]) -> None:
    line = json.dumps(
        {"scenario": scenario, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures},
        ensure_ascii=False,
    )
    print(f"\nreliability figures: {line}")
    with figures_path().open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
