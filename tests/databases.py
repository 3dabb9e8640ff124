"""The test databases: SQLite files, and PostgreSQL schemas when it is reachable.

PostgreSQL is used whenever it is reachable at 127.0.0.1:5432 (database `test`, trust
auth; the user is $DIALER_TEST_PG_USER, else `postgres`, else `root`). Each test gets its
own schema, created and dropped by the `database` fixture (tests/conftest.py), so parallel
runs never collide. When PostgreSQL is unreachable the PostgreSQL half is skipped, unless
CI=true: then it fails.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import asyncpg
import pytest

PG_HOST = os.environ.get("DIALER_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DIALER_TEST_PG_PORT", "5432"))
PG_DB = os.environ.get("DIALER_TEST_PG_DB", "test")
_PG_USERS = [u for u in (os.environ.get("DIALER_TEST_PG_USER"), "postgres", "root") if u]
_pg_user: list[str | None] = []  # memo: [] unknown, [None] unreachable, [user] found


@dataclass(frozen=True)
class Database:
    kind: str  # "sqlite" | "postgres"
    url: str
    schema: str | None = None


async def _find_pg_user() -> str | None:
    if _pg_user:
        return _pg_user[0]
    found = None
    for user in _PG_USERS:
        try:
            conn = await asyncpg.connect(
                host=PG_HOST, port=PG_PORT, user=user, database=PG_DB, timeout=3
            )
        except (OSError, asyncpg.PostgresError, TimeoutError):
            continue
        await conn.close()
        found = user
        break
    _pg_user.append(found)
    return found


async def require_postgres() -> str:
    """The PostgreSQL user to connect as; skips (or fails under CI=true) if unreachable."""
    user = await _find_pg_user()
    if user is None:
        message = f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}/{PG_DB}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: PostgreSQL tests are mandatory)")
        pytest.skip(message)
    return user
