"""Service settings, read from the environment (prefix `DIALER_`). Nothing connects here."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    # The embedded default is a SQLite file; production sets a postgresql+asyncpg URL.
    database_url: str = "sqlite+aiosqlite:///./dialer.db"
    # PostgreSQL only: the schema to work in (search_path). Tests and benches use their own.
    database_schema: str | None = None
    database_echo: bool = False

    host: str = "127.0.0.1"
    port: int = 8000

    # Uploads larger than this are refused with 413.
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    import_batch_size: int = Field(default=1000, ge=1)
    # Default region for phone numbers written without a country code.
    default_country: str = "US"
    # Per-case changes listed by a simulation before it reports `truncated`.
    simulate_change_limit: int = Field(default=200, ge=0)
    page_size_max: int = Field(default=500, ge=1)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
