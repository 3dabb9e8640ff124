"""Without the per-checkout ping (the API server, workers), a pooled PostgreSQL connection
that the server closed is still replaced before a request uses it."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from dialer.db.engine import build_engine
from tests.databases import Database
from tests.dialer.support import settings_for


async def test_connection_closed_by_the_server_is_replaced_at_checkout(
    migrated: Database,
) -> None:
    if migrated.kind != "postgres":
        pytest.skip("a SQLite file has no server to close its connection")
    engine = build_engine(settings_for(migrated), pool_size=1, pre_ping=False)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("select pg_backend_pid()"))).scalar_one()
            driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        admin = await asyncpg.connect(
            engine.url.render_as_string(hide_password=False).replace(
                "postgresql+asyncpg", "postgresql"
            )
        )
        try:
            assert await admin.fetchval("select pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        for _ in range(1000):  # until the driver has read the server's goodbye
            if driver.is_closed():
                break
            await asyncio.sleep(0.001)
        assert driver.is_closed()
        async with engine.connect() as conn:  # no ping, yet no "connection is closed"
            again = (await conn.execute(text("select pg_backend_pid()"))).scalar_one()
        assert again != pid
    finally:
        await engine.dispose()
