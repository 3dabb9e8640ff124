"""Service fixtures: a migrated database, the app under a fixed clock, a key per role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from dialer.app import create_app
from dialer.auth import Role
from dialer.clock import fixed_clock
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import upgrade_to_head
from dialer.services import keys, portfolios
from dialer.settings import Settings
from tests.conftest import Database
from tests.dialer.factories import add_cn_loans

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


@pytest.fixture
async def migrated(database: Database) -> Database:
    engine = build_engine(settings_for(database))
    await upgrade_to_head(engine)
    await engine.dispose()
    return database


@pytest.fixture
async def api(migrated: Database) -> AsyncIterator[Api]:
    settings = settings_for(migrated, max_upload_bytes=2_000_000)
    engine = build_engine(settings)
    maker = build_sessionmaker(engine)
    issued: dict[Role, str] = {}
    async with maker() as session:
        for role in Role:
            _, plaintext = await keys.create_key(
                session, role=role, name=f"{role.value}-1", actor="test", now=NOW
            )
            issued[role] = plaintext
        await add_cn_loans(session, actor="test", now=NOW)
        await portfolios.create_portfolio(
            session,
            name="us-loans",
            profile="us-consumer",
            country="US",
            timezone="America/New_York",
            actor="test",
            now=NOW,
        )
        await portfolios.create_portfolio(
            session,
            name="b2b",
            profile="commercial",
            country="CN",
            timezone="Asia/Shanghai",
            actor="test",
            now=NOW,
        )
    await engine.dispose()
    app = create_app(settings, clock=fixed_clock(NOW))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(app, client, issued, settings)
