"""Campaign dialing mode (ivr / preview / progressive / predictive) and the wrap-up limit;
when an agent-mode call answered by a person found no collector free (abandoned).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False, server_default="ivr"))
        batch.add_column(sa.Column("wrap_up_limit_s", sa.Integer()))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("abandoned_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("abandoned_at")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("wrap_up_limit_s")
        batch.drop_column("mode")
