"""What the service tests share: the fixed clock's instant, settings for a test database,
and the `Api` handle the `api` fixture yields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from dialer.core.auth import Role
from dialer.core.settings import Settings
from tests.databases import Database

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai


def settings_for(db: Database, **overrides: object) -> Settings:
    return Settings(database_url=db.url, database_schema=db.schema, **overrides)  # type: ignore[arg-type]


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    keys: dict[Role, str]
    settings: Settings

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}
