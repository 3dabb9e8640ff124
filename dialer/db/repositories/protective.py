"""Protective facts: their provenance rows, and the stored facts of cases about to be
re-imported (locked on PostgreSQL, so no concurrent writer's fact is lost between the
read and the upsert)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, false, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import CaseRow, ContactPointRow, PartyRow, ProtectiveFactRow

_FACTS: Table = ProtectiveFactRow.__table__  # type: ignore[assignment]


async def record(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert provenance rows; a fact already recorded keeps its first recorder."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(_FACTS)
    await session.execute(stmt.on_conflict_do_nothing(), list(rows))


async def provenance(
    session: AsyncSession, keys: Iterable[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], ProtectiveFactRow]:
    """The provenance of each (entity id, fact) that has one."""
    wanted = list(set(keys))
    found: dict[tuple[uuid.UUID, str], ProtectiveFactRow] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        stmt = select(ProtectiveFactRow).where(
            tuple_(ProtectiveFactRow.entity_id, ProtectiveFactRow.fact).in_(chunk)
        )
        for row in await session.scalars(stmt):
            found[(row.entity_id, row.fact)] = row
    return found


async def of_case(session: AsyncSession, case_id: uuid.UUID) -> Sequence[ProtectiveFactRow]:
    stmt = select(ProtectiveFactRow).where(ProtectiveFactRow.case_id == case_id)
    return (await session.scalars(stmt.order_by(ProtectiveFactRow.recorded_at))).all()


async def facts_of(session: AsyncSession, entity_id: uuid.UUID, prefix: str) -> set[str]:
    """The recorded facts of one entity whose name starts with `prefix`."""
    stmt = select(ProtectiveFactRow.fact).where(
        ProtectiveFactRow.entity_id == entity_id, ProtectiveFactRow.fact.startswith(prefix)
    )
    return set((await session.scalars(stmt)).all())


async def forget(session: AsyncSession, entity_id: uuid.UUID, fact: str) -> None:
    await session.execute(
        delete(ProtectiveFactRow).where(
            ProtectiveFactRow.entity_id == entity_id, ProtectiveFactRow.fact == fact
        )
    )


async def lock_cases(session: AsyncSession, case_ids: Sequence[uuid.UUID]) -> None:
    """Hold the cases until the caller commits, before reading facts to merge: every
    writer of protective facts locks first, so none overwrites another's fact with a
    list read before it was added. PostgreSQL: the case rows, FOR UPDATE in id order.
    SQLite has no row locks: a write statement matching nothing takes the database's
    write lock for the transaction."""
    if session.get_bind().dialect.name == "sqlite":
        stmt = update(CaseRow).where(false()).values(updated_at=CaseRow.updated_at)
        await session.execute(stmt, execution_options={"synchronize_session": False})
        return
    ids = sorted(set(case_ids))
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        await session.execute(
            select(CaseRow.id).where(CaseRow.id.in_(chunk)).order_by(CaseRow.id).with_for_update()
        )


@dataclass(slots=True)
class Stored:
    """What the database holds for cases about to be upserted, keyed by row id."""

    cases: dict[uuid.UUID, tuple[list[str], datetime | None]] = field(default_factory=dict)
    parties: dict[uuid.UUID, bool] = field(default_factory=dict)
    points: dict[uuid.UUID, tuple[list[str], bool]] = field(default_factory=dict)


async def stored_for_upsert(session: AsyncSession, case_ids: Sequence[uuid.UUID]) -> Stored:
    """Flags, refusals, opt-outs and do-not-call of the existing ones among `case_ids`,
    read under the lock of `lock_cases` (on PostgreSQL the cases' read takes it)."""
    out = Stored()
    ids = sorted(set(case_ids))
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres:
        await lock_cases(session, ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        cases = select(CaseRow.id, CaseRow.flags, CaseRow.dispute_resolved_at).where(
            CaseRow.id.in_(chunk)
        )
        if postgres:  # as `lock_cases`: FOR UPDATE, in id order
            cases = cases.order_by(CaseRow.id).with_for_update()
        for cid, flags, resolved in await session.execute(cases):
            out.cases[cid] = (list(flags or ()), resolved)
        parties = select(PartyRow.id, PartyRow.refused_contact).where(PartyRow.case_id.in_(chunk))
        for pid, refused in await session.execute(parties):
            out.parties[pid] = bool(refused)
        points = select(
            ContactPointRow.id, ContactPointRow.opted_out, ContactPointRow.do_not_call
        ).where(ContactPointRow.case_id.in_(chunk))
        for cpid, opted_out, dnc in await session.execute(points):
            out.points[cpid] = (list(opted_out or ()), bool(dnc))
    return out
