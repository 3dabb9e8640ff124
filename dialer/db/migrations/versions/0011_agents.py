"""Collectors at the desk: an `agents` table (state, since, endpoint, the call held or in
hand, wrap-up due).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("endpoint", sa.String(255)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("campaign_id", sa.Uuid()),
        sa.Column("attempt_id", sa.Uuid()),
        sa.Column("wrap_up_due_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("agents")
