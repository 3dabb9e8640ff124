"""End-to-end fixtures: PostgreSQL and RabbitMQ only (the production parts), a fresh schema
and broker namespace per test, a mock Twilio, and worker processes stopped afterwards.
Skipped when a service is unreachable, failed instead under CI=true."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.databases import PG_DB, PG_HOST, PG_PORT, Database, require_postgres
from tests.e2e.harness import E2E, close_e2e, open_e2e

__all__ = ["e2e", "pg"]


@pytest.fixture
async def pg() -> AsyncIterator[Database]:
    """A fresh PostgreSQL schema, dropped afterwards (no SQLite half: production parts)."""
    user = await require_postgres()
    schema = f"e2e_{uuid.uuid4().hex[:16]}"
    await _execute(user, f'CREATE SCHEMA "{schema}"')
    try:
        yield Database(
            "postgres", f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{PG_DB}", schema
        )
    finally:  # a fresh connection: the restart test cuts every one open before it
        await _execute(user, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def _execute(user: str, sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=user, database=PG_DB)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def e2e(pg: Database, rabbit_url: str, tmp_path: Path) -> AsyncIterator[E2E]:
    assert pg.schema is not None
    world = open_e2e(pg.url, pg.schema, rabbit_url, tmp_path)
    try:
        yield world
    finally:
        await close_e2e(world)
