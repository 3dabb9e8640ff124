"""Protective facts keep who recorded them, and an API key's name is one identity.

`protective_facts`: one row per protective fact (a case flag, a party's refusal, a
contact point's opt-out, do-not-call or consent revocation) with when, by whom and
through what it was recorded, so an import that would clear one can report it
(architecture invariant 8). Facts recorded before this revision have no row; the
service says so where it would name the recorder.

`uq_api_keys_active_name`: at most one active (not revoked) key per name: an agent's
name is whose cases are "my cases". Revoke the old key before issuing a new one. Where
active keys already share a name, the oldest keeps it and each later one is renamed
`<name>~<prefix>` (its own key prefix), with an audit entry: every key keeps working, and
no one sees another holder's cases any more until an admin reassigns them.

Revision ID: 0007
Revises: 0006 (attempt lease and fence)
Create Date: 2026-12-07 19:10:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_AUDIT = sa.table(
    "audit_log",
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("entity", sa.String()),
    sa.column("entity_id", sa.String()),
    sa.column("detail", JSON),
)

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "protective_facts",
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("fact", sa.String(length=40), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_protective_facts_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entity_id", "fact", name=op.f("pk_protective_facts")),
    )
    op.create_index("ix_protective_facts_case_id", "protective_facts", ["case_id"])
    _separate_shared_names()
    op.create_index(
        "uq_api_keys_active_name",
        "api_keys",
        ["name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
        sqlite_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_api_keys_active_name", table_name="api_keys")
    op.drop_index("ix_protective_facts_case_id", table_name="protective_facts")
    op.drop_table("protective_facts")


def _separate_shared_names() -> None:
    """Rename every active key that shares its name with an older active key (audited)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, name, prefix FROM api_keys WHERE revoked_at IS NULL "
            "ORDER BY name, created_at, prefix"
        )
    ).all()
    seen: set[str] = set()
    now = datetime.now(UTC)
    for key_id, name, prefix in rows:
        if name not in seen:
            seen.add(name)
            continue
        renamed = f"{name[: 127 - len(prefix)]}~{prefix}"
        bind.execute(
            sa.text("UPDATE api_keys SET name = :renamed WHERE id = :id"),
            {"renamed": renamed, "id": key_id},
        )
        bind.execute(
            _AUDIT.insert().values(
                at=now if bind.dialect.name != "sqlite" else now.replace(tzinfo=None),
                actor="migration 0006",
                action="key.rename",
                entity="api_key",
                entity_id=str(uuid.UUID(str(key_id))),
                detail={
                    "before": {"name": name},
                    "after": {"name": renamed},
                    "why": "another active key held the same name (an agent's identity)",
                },
            )
        )
