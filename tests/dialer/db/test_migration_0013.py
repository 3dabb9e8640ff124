"""Migration 0013: a party's or contact point's creation is audited under the created
entity's id (what the "as of" reader leaves out), rows of the old shape are moved to it,
and downgrade restores the old shape."""

from __future__ import annotations

import uuid
from typing import Any

from alembic import command
from sqlalchemy import select
from sqlalchemy.engine import Connection

from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import alembic_config, upgrade_to_head
from dialer.db.models import AuditRow
from dialer.schemas.cases import CaseIn, ContactPointIn, PartyIn
from dialer.services import cases
from strategy.model import ContactKind, PartyRole
from tests.databases import Database
from tests.dialer.factories import add_cn_loans, cn_case
from tests.dialer.support import NOW, settings_for


def _to(revision: str, *, down: bool) -> Any:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    return run


async def _creations(engine: Any) -> list[tuple[str, str, str, dict[str, Any]]]:
    async with build_sessionmaker(engine)() as session:
        rows = await session.scalars(
            select(AuditRow)
            .where(AuditRow.action.in_(("party.create", "contact_point.create")))
            .order_by(AuditRow.id)
        )
        return [(r.action, r.entity, r.entity_id, dict(r.detail)) for r in rows]


async def test_creations_name_what_they_created_and_old_rows_are_moved(
    database: Database,
) -> None:
    engine = build_engine(settings_for(database))
    try:
        await upgrade_to_head(engine)
        async with build_sessionmaker(engine)() as session:
            await add_cn_loans(session, actor="test", now=NOW)
            case = await cases.create_case(
                session, CaseIn.model_validate(cn_case("MIG-13")), actor="test", now=NOW
            )
            debtor = case.parties[0].id
            await cases.add_party(
                session, case.id, PartyIn(ref="sister", role=PartyRole.THIRD_PARTY),
                actor="test", now=NOW,
            )  # fmt: skip
            await cases.add_contact_point(
                session, case.id, debtor,
                ContactPointIn(kind=ContactKind.PHONE, value="+8613900139000"),
                actor="test", now=NOW,
            )  # fmt: skip
            stored = await cases.get_case(session, case.id)
            sister = next(p.id for p in stored.parties if p.key == "sister")
            point = next(
                cp.id for p in stored.parties for cp in p.contact_points
                if cp.value == "+8613900139000"
            )  # fmt: skip
        new = [
            ("party.create", "party", str(sister), {"case": str(case.id)}, {"party": "sister"}),
            (
                "contact_point.create", "contact_point", str(point), {"party": str(debtor)},
                {"value": "+8613900139000"},
            ),
        ]  # fmt: skip
        written = await _creations(engine)
        for (action, entity, entity_id, detail), (a, e, i, owner, after) in zip(
            written, new, strict=True
        ):
            assert (action, entity, entity_id) == (a, e, i)
            assert detail["after"] == after and detail.items() >= owner.items()

        async with engine.begin() as conn:  # the old writer's shape
            await conn.run_sync(_to("0012", down=True))
        old = await _creations(engine)
        assert [(a, e, i) for a, e, i, _ in old] == [
            ("party.create", "case", str(case.id)),
            ("contact_point.create", "party", str(debtor)),
        ]
        assert all("case" not in d and "party" not in d for *_, d in old)

        await upgrade_to_head(engine)  # moved to the created entity again
        assert await _creations(engine) == written
        assert uuid.UUID(written[0][2]) == sister
    finally:
        await engine.dispose()
