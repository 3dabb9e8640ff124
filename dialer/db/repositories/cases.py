"""Cases with their parties and contact points: bulk upsert, load, filter, page."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select, update
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


async def count_in(session: AsyncSession, portfolios: Iterable[str]) -> int:
    names = list(portfolios)
    return int(
        await session.scalar(
            select(func.count()).select_from(CaseRow).where(CaseRow.portfolio.in_(names))
        )
        or 0
    )


async def upsert(
    session: AsyncSession, docs: Sequence[CaseRows], *, include_case: bool = True
) -> None:
    """Insert or update whole cases in three statements (executemany), keyed on
    (portfolio, external_ref), (case, party key) and (party, kind, value). (Measured: one
    multi-row VALUES statement per chunk is 4x slower here, spent compiling it.)"""
    if not docs:
        return
    if include_case:
        stmt = _insert(session, _CASES)
        stmt = stmt.on_conflict_do_update(
            index_elements=["portfolio", "external_ref"],
            set_={c: stmt.excluded[c] for c in _CASE_UPDATED},
        )
        await session.execute(stmt, [d.case for d in docs])
    parties = [p for d in docs for p in d.parties]
    if parties:
        stmt = _insert(session, _PARTIES)
        stmt = stmt.on_conflict_do_update(
            index_elements=["case_id", "key"],
            set_={c: stmt.excluded[c] for c in _PARTY_UPDATED},
        )
        await session.execute(stmt, parties)
    points = [p for d in docs for p in d.contact_points]
    if points:
        stmt = _insert(session, _POINTS)
        stmt = stmt.on_conflict_do_update(
            index_elements=["party_id", "kind", "value"],
            set_={c: stmt.excluded[c] for c in _POINT_UPDATED},
        )
        await session.execute(stmt, points)


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
