"""Cases with their parties and contact points: bulk upsert, load, filter, page."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table, column, select, text, update
from sqlalchemy import table as sql_table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from dialer.db.models import AttemptRow, CaseRow, ContactPointRow, PartyRow
from dialer.db.rows import CaseRows

_CASES: Table = CaseRow.__table__  # type: ignore[assignment]
_PARTIES: Table = PartyRow.__table__  # type: ignore[assignment]
_POINTS: Table = ContactPointRow.__table__  # type: ignore[assignment]

# Re-import updates the book's facts but never what the service itself recorded since
# (tier, assignment, pinned version; consent revocations, wrong numbers). Protective facts
# (flags, refusals, opt-outs, do-not-call) arrive here already merged with the stored ones
# by `dialer.services.protective.upsert`, which holds the rows locked: they only grow.
_CASE_UPDATED = (
    "amount",
    "balance",
    "currency",
    "due_date",
    "stage",
    "stage_started_on",
    "status",
    "flags",
    "country",
    "dispute_resolved_at",
    "updated_at",
)
_PARTY_UPDATED = (
    "position",
    "role",
    "name",
    "relation",
    "knows_of_debt",
    "refused_contact",
    "timezone",
    "title",
)
# The number's stored facts are derived again on every write (`convert.number_facts`).
_POINT_UPDATED = (
    "position",
    "opted_out",
    "timezone",
    "do_not_call",
    "mobile",
    "number_zones",
    "number_mobile",
)


def _insert(session: AsyncSession, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)


async def upsert(
    session: AsyncSession, docs: Sequence[CaseRows], *, include_case: bool = True
) -> None:
    """Insert or update whole cases, keyed on (portfolio, external_ref), (case, party key)
    and (party, kind, value): one statement per table (see `_upsert`)."""
    if not docs:
        return
    tables: list[tuple[Table, list[dict[str, Any]], list[str], tuple[str, ...]]] = [
        (_PARTIES, [p for d in docs for p in d.parties], ["case_id", "key"], _PARTY_UPDATED),
        (_POINTS, [p for d in docs for p in d.contact_points], _POINT_KEY, _POINT_UPDATED),
    ]
    if include_case:
        cases = [d.case for d in docs]
        tables.insert(0, (_CASES, cases, ["portfolio", "external_ref"], _CASE_UPDATED))
    for table, rows, key, updated in tables:
        if rows:
            await _upsert(session, table, rows, key, updated)


_POINT_KEY = ["party_id", "kind", "value"]
# Below this many rows a batch goes as one executemany; above it, on PostgreSQL, through
# COPY into a temporary table (the statement and its parameters are then not built per row).
_COPY_FROM = 200


async def _upsert(
    session: AsyncSession,
    table: Table,
    rows: list[dict[str, Any]],
    key: list[str],
    updated: tuple[str, ...],
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET `updated`: an executemany, or on
    PostgreSQL for a large batch, COPY into a temporary table and one INSERT ... SELECT."""
    if session.get_bind().dialect.name != "postgresql" or len(rows) < _COPY_FROM:
        stmt = _insert(session, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=key, set_={c: stmt.excluded[c] for c in updated}
        )
        await session.execute(stmt, rows)
        return
    columns = list(rows[0])  # the table's own column names, from `convert.case_rows`
    staged = f"staged_{table.name}"
    names = ", ".join(f'"{c}"' for c in columns)
    # Through the session first: its transaction is begun before the raw COPY joins it.
    await session.execute(
        text(
            f'CREATE TEMPORARY TABLE "{staged}" ON COMMIT DROP AS'  # noqa: S608 (no input)
            f' SELECT {names} FROM "{table.name}" WITH NO DATA'
        )
    )
    raw = (await (await session.connection()).get_raw_connection()).driver_connection
    assert raw is not None
    await raw.copy_records_to_table(staged, records=_records(table, columns, rows), columns=columns)
    source: Any = select(*(column(c) for c in columns)).select_from(sql_table(staged))
    stmt = pg_insert(table).from_select(columns, source)
    stmt = stmt.on_conflict_do_update(
        index_elements=key, set_={c: stmt.excluded[c] for c in updated}
    )
    await session.execute(stmt)
    await session.execute(text(f'DROP TABLE "{staged}"'))


def _records(table: Table, columns: list[str], rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows as COPY takes them: values in column order, JSON columns as JSON text."""
    values = itemgetter(*columns)
    json_at = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    out = []
    for row in rows:
        record = list(values(row))
        for i in json_at:
            if record[i] is not None:
                record[i] = json.dumps(record[i])
        out.append(tuple(record))
    return out


async def get(session: AsyncSession, case_id: uuid.UUID) -> CaseRow | None:
    return await session.scalar(
        select(CaseRow)
        .where(CaseRow.id == case_id)
        .options(selectinload(CaseRow.parties).selectinload(PartyRow.contact_points))
        .execution_options(populate_existing=True)
    )


async def exists(session: AsyncSession, case_id: uuid.UUID) -> bool:
    return (await session.scalar(select(CaseRow.id).where(CaseRow.id == case_id))) is not None


async def page(
    session: AsyncSession,
    *,
    portfolio: str | None = None,
    tier: str | None = None,
    status: str | None = None,
    team: str | None = None,
    agent: str | None = None,
    external_ref: str | None = None,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> Sequence[CaseRow]:
    stmt = select(CaseRow).order_by(CaseRow.id).limit(limit)
    if portfolio is not None:
        stmt = stmt.where(CaseRow.portfolio == portfolio)
    if tier is not None:
        stmt = stmt.where(CaseRow.tier == tier)
    if status is not None:
        stmt = stmt.where(CaseRow.status == status)
    if team is not None:
        stmt = stmt.where(CaseRow.team == team)
    if agent is not None:
        stmt = stmt.where(CaseRow.agent == agent)
    if external_ref is not None:
        stmt = stmt.where(CaseRow.external_ref == external_ref)
    if after is not None:
        stmt = stmt.where(CaseRow.id > after)
    return (await session.scalars(stmt)).all()


async def stream_open(
    session: AsyncSession, portfolio: str, batch: int = 500
) -> AsyncIterator[list[CaseRow]]:
    """Open cases of a portfolio, in id order, `batch` at a time (their facts are read by
    `dialer.facts`)."""
    after: uuid.UUID | None = None
    while True:
        stmt = (
            select(CaseRow)
            .where(CaseRow.portfolio == portfolio, CaseRow.status == "open")
            .order_by(CaseRow.id)
            .limit(batch)
        )
        if after is not None:
            stmt = stmt.where(CaseRow.id > after)
        rows = list((await session.scalars(stmt)).all())
        if not rows:
            return
        yield rows
        after = rows[-1].id


async def get_party(session: AsyncSession, party_id: uuid.UUID) -> PartyRow | None:
    return await session.get(PartyRow, party_id)


async def get_contact_point(session: AsyncSession, cp_id: uuid.UUID) -> ContactPointRow | None:
    return await session.get(ContactPointRow, cp_id)


async def set_pins(
    session: AsyncSession,
    portfolio: str,
    version_id: uuid.UUID | None,
    *,
    only_unpinned_with_attempts: bool,
    now: datetime,
) -> int:
    """Pin open cases to a strategy version (None clears the pin)."""

    stmt = update(CaseRow).where(CaseRow.portfolio == portfolio, CaseRow.status == "open")
    if only_unpinned_with_attempts:
        stmt = stmt.where(
            CaseRow.strategy_version_id.is_(None),
            CaseRow.id.in_(select(AttemptRow.case_id)),
        )
    result = await session.execute(
        stmt.values(strategy_version_id=version_id, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def upsert_parties(session: AsyncSession, doc: CaseRows) -> None:
    """Parties and contact points of an existing case (the case row is left alone)."""
    await upsert(session, [doc], include_case=False)
