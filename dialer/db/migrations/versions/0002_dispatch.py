"""Dispatch: campaign lifecycle and planning progress, attempt dispatch facts, the outbox
and the per-campaign pacing row.

Column types are spelled out here (not imported from dialer.db.types) so later model
changes cannot rewrite history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        # max_in_progress NULL: no in-progress limit (pacing only)
        batch_op.alter_column("max_in_progress", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("started_at", TS, nullable=True))
        batch_op.add_column(sa.Column("finished_at", TS, nullable=True))
        batch_op.add_column(sa.Column("updated_at", TS, nullable=True))
        # planning progress: the last case id planned (keyset cursor), a lease so exactly one
        # planner works on a campaign at a time, counts of planned attempts and refusals
        batch_op.add_column(sa.Column("plan_cursor", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("plan_done", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("plan_lease_until", TS, nullable=True))
        batch_op.add_column(sa.Column("plan_lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("cases_seen", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("planned", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("refused_by_rule", JSON, nullable=True))

    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("not_before", TS, nullable=True))
        batch_op.add_column(sa.Column("disclosure", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("voicemail_disclosure", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("template_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("append_opt_out", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("refusal", JSON, nullable=True))
        batch_op.add_column(sa.Column("error_code", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("error_message", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("sent_at", TS, nullable=True))
        batch_op.add_column(sa.Column("updated_at", TS, nullable=True))
        batch_op.create_index("ix_attempts_campaign_id_state", ["campaign_id", "state"])
        batch_op.create_index("ix_attempts_state_reserved_at", ["state", "reserved_at"])
    # SQLite cannot add a constraint without recreating the table, which outcomes' rows
    # referencing attempts would forbid: there the service keeps the reference consistent.
    if op.get_bind().dialect.name != "sqlite":
        op.create_foreign_key(
            "fk_attempts_campaign_id_campaigns",
            "attempts",
            "campaigns",
            ["campaign_id"],
            ["id"],
            ondelete="CASCADE",
        )

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("available_at", TS, nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.Column("publish_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_unpublished",
            ["available_at", "id"],
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )

    op.create_table(
        "pacing",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("next_slot_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_pacing_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_pacing")),
    )


def downgrade() -> None:
    op.drop_table("pacing")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unpublished")
    op.drop_table("outbox")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_attempts_campaign_id_campaigns", "attempts", type_="foreignkey")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_state_reserved_at")
        batch_op.drop_index("ix_attempts_campaign_id_state")
        for name in (
            "updated_at",
            "sent_at",
            "error_message",
            "error_code",
            "refusal",
            "append_opt_out",
            "template_key",
            "voicemail_disclosure",
            "disclosure",
            "not_before",
            "campaign_id",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        for name in (
            "refused_by_rule",
            "planned",
            "cases_seen",
            "plan_lease_owner",
            "plan_lease_until",
            "plan_done",
            "plan_cursor",
            "updated_at",
            "finished_at",
            "started_at",
        ):
            batch_op.drop_column(name)
        batch_op.alter_column("max_in_progress", existing_type=sa.Integer(), nullable=False)
