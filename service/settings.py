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
    # Base64 of 32 random bytes. Unset: a key file is created (mode 0600) at key_file.
    encryption_key: str | None = None
    key_file: Path = Path("var/ledger.key")
    # How often a command is retried after a concurrent writer changed the same aggregate.
    conflict_retries: int = Field(default=8, ge=1, le=100)
    postgres_pool_size: int = Field(default=8, ge=1, le=200)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
