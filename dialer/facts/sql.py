"""Running the readers' statements: on PostgreSQL, on the driver's own connection (its
records need no SQLAlchemy row processing, and its UUIDs turn into text in C), inside the
caller's transaction when one has begun, else each on its own (no BEGIN and ROLLBACK
round trips for a request that only reads); elsewhere, plain Core results on the
session's connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

Fetch = Callable[[Executable], Awaitable[Sequence[Any]]]

# PostgreSQL statements as the driver's SQL and their parameters' names, by identity.
_RAW: dict[int, tuple[str, tuple[str, ...]]] = {}


def raw(*statements: Any) -> None:
    """Compile PostgreSQL statements once to the driver's SQL (they live as long as the
    process, so their identity is a stable key)."""
    for stmt in statements:
        compiled = stmt.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
        _RAW[id(stmt)] = (compiled.string, tuple(compiled.positiontup or ()))


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def fetcher(session: AsyncSession, params: dict[str, Any]) -> Fetch:
    """A function running one statement with `params` in the session's transaction. What
    the session holds unflushed is flushed first, as autoflush would."""
    await session.flush()
    conn = await session.connection()
    driver = None
    if is_postgres(session):
        adapted = await conn.get_raw_connection()
        driver = adapted.driver_connection
        if driver is not None and not driver.is_in_transaction() and not _read_committed(adapted):
            driver = None  # a stronger isolation asked for: SQLAlchemy's execute begins it

    async def fetch(stmt: Executable) -> Sequence[Any]:
        found = _RAW.get(id(stmt)) if driver is not None else None
        if found is None:
            return (await conn.execute(stmt, params)).all()
        sql, names = found
        return await driver.fetch(sql, *[params[n] for n in names])  # type: ignore[no-any-return,union-attr]

    return fetch


def _read_committed(adapted: Any) -> bool:
    """Whether the connection's transactions are READ COMMITTED or autocommit (None: the
    server's default, PostgreSQL's READ COMMITTED). There each statement reads its own
    snapshot inside a transaction too, so a reader's statements run before any BEGIN see
    what they would have seen after it."""
    level = getattr(adapted.dbapi_connection, "isolation_level", None)
    return level is None or str(level).replace("_", " ").lower() in (
        "read committed",
        "autocommit",
    )
