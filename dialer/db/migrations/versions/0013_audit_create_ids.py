"""A party's or contact point's creation is audited under its own id.

`party.create` used to be recorded under its case (`entity = 'case'`, the party's key in
`detail.after.party`) and `contact_point.create` under its party (the value in
`detail.after.value`). The "as of" reader (`dialer.facts.as_of`) leaves out what was
created after an instant by the created entity's id, so it kept a party added later and
dropped a whole party when one of its contact points was added later. Such rows now name
the party or contact point they created (found by case and key, by party and value), with
the owner beside `before` and `after` (`detail.case`, `detail.party`), as new rows are
written; `before`, `after` and their digests are unchanged. Rows whose entity no longer
exists are left as they were. Downgrade restores the old shape.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 01:40:00
"""

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_AUDIT = sa.table(
    "audit_log",
    sa.column("id", sa.BigInteger()),
    sa.column("action", sa.String()),
    sa.column("entity", sa.String()),
    sa.column("entity_id", sa.String()),
    sa.column("detail", JSON),
)
_PARTIES = sa.table(
    "parties",
    sa.column("id", sa.Uuid()),
    sa.column("case_id", sa.Uuid()),
    sa.column("key", sa.String()),
)
_POINTS = sa.table(
    "contact_points",
    sa.column("id", sa.Uuid()),
    sa.column("party_id", sa.Uuid()),
    sa.column("value", sa.String()),
)


def _rows(action: str, entity: str) -> Sequence[Any]:
    return (
        op.get_bind()
        .execute(sa.select(_AUDIT).where(_AUDIT.c.action == action, _AUDIT.c.entity == entity))
        .all()
    )


def _set(row_id: int, entity: str, entity_id: str, detail: dict[str, Any]) -> None:
    op.get_bind().execute(
        _AUDIT.update()
        .where(_AUDIT.c.id == row_id)
        .values(entity=entity, entity_id=entity_id, detail=detail)
    )


def _after(detail: Any) -> dict[str, Any]:
    after = detail.get("after") if isinstance(detail, dict) else None
    return dict(after) if isinstance(after, dict) else {}


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def upgrade() -> None:
    conn = op.get_bind()
    for row in _rows("party.create", "case"):
        after, case_id = _after(row.detail), _uuid(row.entity_id)
        party = conn.execute(
            sa.select(_PARTIES.c.id).where(
                _PARTIES.c.case_id == case_id, _PARTIES.c.key == after.get("party")
            )
        ).scalar()
        if case_id is not None and party is not None:
            _set(row.id, "party", str(party), {**row.detail, "case": row.entity_id})
    for row in _rows("contact_point.create", "party"):
        after, party_id = _after(row.detail), _uuid(row.entity_id)
        point = conn.execute(
            sa.select(_POINTS.c.id).where(
                _POINTS.c.party_id == party_id, _POINTS.c.value == after.get("value")
            )
        ).scalar()
        if party_id is not None and point is not None:
            _set(row.id, "contact_point", str(point), {**row.detail, "party": row.entity_id})


def downgrade() -> None:
    for action, entity, owner in (
        ("party.create", "party", "case"),
        ("contact_point.create", "contact_point", "party"),
    ):
        for row in _rows(action, entity):
            detail = dict(row.detail) if isinstance(row.detail, dict) else {}
            if owner in detail:
                _set(row.id, owner, str(detail.pop(owner)), detail)
