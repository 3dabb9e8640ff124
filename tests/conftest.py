"""Shared fixtures: a fresh database per test (SQLite and PostgreSQL) and the RabbitMQ URL."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.broker import require_rabbit
from tests.databases import PG_DB, PG_HOST, PG_PORT, Database, require_postgres


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


@pytest.fixture
async def rabbit_url() -> str:
    """The broker URL; skips when RabbitMQ is unreachable, fails instead under CI=true."""
    return await require_rabbit()


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
