"""`ledger bench`: the performance suite of the ledger, against the real components.

One run creates its own PostgreSQL database, loads a synthetic deployment through the ledger's
own commands, measures the raw PostgreSQL ceilings (baseline.py), starts `ledger serve` as a
subprocess and drives it over loopback HTTP (ingest.py, roster_import.py, queries.py), runs the
projection (projection.py), and drops the database afterwards. harness.py puts the figures
together; each measurement lives in its own module.
"""
