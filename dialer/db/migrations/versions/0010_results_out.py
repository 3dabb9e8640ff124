"""Results out: per-case planning refusals, and the indexes the results lists read by.

`plan_refusals` holds one row per case per campaign the planner planned nothing for:
the rule ids, the reason in plain words and the next instant the engine would allow a
contact (NULL: none named). The case's timeline shows them. Indexes: attempts by (at,
id) for the attempts list and export, promises by due day, cases by external reference.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 22:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "plan_refusals",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rules", JSON, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("next_allowed", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_plan_refusals_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_plan_refusals_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "case_id", name=op.f("pk_plan_refusals")),
    )
    op.create_index("ix_plan_refusals_case_id", "plan_refusals", ["case_id", "planned_at"])
    op.create_index("ix_attempts_at_id", "attempts", ["at", "id"])
    op.create_index(
        "ix_attempts_promise_date",
        "attempts",
        ["promise_date", "id"],
        postgresql_where=sa.text("promise_date IS NOT NULL"),
        sqlite_where=sa.text("promise_date IS NOT NULL"),
    )
    op.create_index("ix_cases_external_ref", "cases", ["external_ref"])


def downgrade() -> None:
    op.drop_index("ix_cases_external_ref", table_name="cases")
    op.drop_index("ix_attempts_promise_date", table_name="attempts")
    op.drop_index("ix_attempts_at_id", table_name="attempts")
    op.drop_index("ix_plan_refusals_case_id", table_name="plan_refusals")
    op.drop_table("plan_refusals")
