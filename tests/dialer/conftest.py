"""Service fixtures: a migrated database, the app under a fixed clock, a key per role."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from dialer.api.app import create_app
from dialer.core.auth import Role
from dialer.core.clock import fixed_clock
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import upgrade_to_head
from dialer.services import keys, portfolios
from tests.databases import Database
from tests.dialer.factories import add_cn_loans
from tests.dialer.support import NOW, Api, settings_for


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
