"""Reliability scenarios against real processes: `ledger serve` killed with SIGKILL under
load, `ledger project` killed mid-batch, a private PostgreSQL stopped and started under load,
contention, hostile input and bounds. The long ones are marked slow: skip them locally with
`pytest tests/reliability -m "not slow"`; CI runs everything. Measured figures are printed
(`-s`) and appended to $LEDGER_RELIABILITY_FIGURES (default: reliability-figures.jsonl in the
temporary directory)."""
