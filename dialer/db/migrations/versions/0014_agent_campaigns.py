"""Agents assigned to campaigns: a supervisor's list of the collectors who take a
campaign's calls (none listed: the whole floor takes them).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_campaigns",
        sa.Column(
            "campaign_id",
            sa.Uuid(),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "agent_id", sa.Uuid(), sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_agent_campaigns_agent", "agent_campaigns", ["agent_id"])


def downgrade() -> None:
    op.drop_index("ix_agent_campaigns_agent", table_name="agent_campaigns")
    op.drop_table("agent_campaigns")
