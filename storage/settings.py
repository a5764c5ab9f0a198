"""The one settings object, read from the environment (and .env) by the server and the CLI."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", env_file=".env", extra="ignore")

    # sqlite:///path/to/file.sqlite (the embedded default) or postgresql://user@host:port/db.
    database_url: str = Field(default="sqlite:///var/ledger.sqlite")
    # Base64 of 32 random bytes. Unset: the key file at key_file, created (mode 0600) on the
    # first start of a store that holds no events; never beside one that does
    # (storage/key_check.py).
    encryption_key: str | None = None
    key_file: Path = Path("var/ledger.key")
    # How often a command is retried after a concurrent writer changed the same aggregate.
    conflict_retries: int = Field(default=8, ge=1, le=100)
    postgres_pool_size: int = Field(default=8, ge=1, le=200)
    # The Ed25519 key that signs audit seals: base64 of its 32-byte private key. Unset: a key
    # file is created (mode 0600) at audit_key_file. Its public key is published with every seal.
    audit_signing_key: str | None = None
    audit_key_file: Path = Path("var/audit.key")
    # The public key(s) seals are verified against, configured outside the database: base64 of
    # the raw 32-byte Ed25519 public key, as `ledger audit public-key` prints it (several,
    # separated by commas or spaces, while a signing key is being replaced). Or a file holding
    # that text. Neither set: verification fails (a seal proves nothing by a key the database
    # itself names).
    audit_public_key: str | None = None
    audit_public_key_file: Path | None = None
    # The server seals by itself at least this often while events arrive (and at every month
    # close).
    audit_seal_interval_s: int = Field(default=3600, ge=60, le=3600)
    # `ledger export`: events per Parquet segment (the last segment of a run may hold fewer).
    export_segment_events: int = Field(default=100_000, ge=1, le=10_000_000)
    # The HTTP service (ledger serve).
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Server processes. Each parses, checks and answers requests on its own core; their
    # writers take turns (service/writer_lock.py). More than the machine's cores gains nothing.
    workers: int = Field(default=1, ge=1, le=64)
    # Request bodies: JSON stays small; a roster file of 100,000 rows fits well under the cap.
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_import_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Member searches (POST /v1/members/search) each token may make per minute, counted in the
    # store across every server process (service/searches.py). The benchmark raises it to time
    # lookups back to back.
    searches_per_minute: int = Field(default=60, ge=1, le=1_000_000)
    # Aggregates each server process keeps in memory, so that a command reads only the events
    # stored since (service/group_commit.py). tree_cache_size: the organisations, their books
    # and the deployment's policies, which every month's dues and levies read again; sized to
    # hold the whole tree (two per organisation, and a few) it keeps a command's cost flat in
    # the deployment's size. aggregate_cache_size: the rest (members, vouchers, files), in the
    # writer and in the repository that reads for it. docs/operations.md gives the memory each
    # costs.
    tree_cache_size: int = Field(default=20_000, ge=100, le=10_000_000)
    aggregate_cache_size: int = Field(default=20_000, ge=100, le=10_000_000)
    # /readyz fails while the read models are further behind than this many events.
    ready_max_lag_events: int = Field(default=10_000, ge=0)
    # Whether each server process keeps the read models current in a thread of its own.
    # `ledger serve` turns it off in its processes and runs one projection process beside
    # them instead (scripts/server/projection_process.py).
    projection_thread: bool = True


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
