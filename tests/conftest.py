"""Shared fixtures: a fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL is used whenever it is reachable at 127.0.0.1:5432 (database `test`, trust
auth; the user is $DIALER_TEST_PG_USER, else `postgres`, else `root`). Each test gets its
own schema, created and dropped here, so parallel runs never collide. When PostgreSQL is
unreachable the PostgreSQL half is skipped, unless CI=true: then it fails.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}")
        return
    user = await require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=user, database=PG_DB)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield Database(
            "postgres",
            f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{PG_DB}",
            schema,
        )
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


# --- figures ---------------------------------------------------------------------------------
# The fault, load and audit tests print their figures (jobs, duplicates and crashes
# injected, violations found, ...). pytest hides a passing test's output, so the lines are
# gathered here and written in a section at the end of every run, CI's included.
_FIGURES = re.compile(
    r"^(\[e2e |audit (clean|injected)|time windows|chinese calendar|schemathesis )"
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines: list[str] = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", None) != "call":
                continue
            found = [ln for ln in report.capstdout.splitlines() if _FIGURES.match(ln)]
            if found:
                lines.append(f"{report.nodeid} ({outcome})")
                lines += [f"  {ln}" for ln in found]
    if lines:
        terminalreporter.section("figures from the fault, load and audit tests")
        for line in lines:
            terminalreporter.write_line(line)
