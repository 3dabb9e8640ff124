"""A debtor's recorded unreachability: "unreachable since D (skip-trace)", stated by an
agent or supervisor rather than derived from attempts, with the instant it expires.

Three nullable columns on `cases`, all NULL when nothing is recorded (every row written
before this revision). The engine reads them as `Case.recorded_unreachable` and uses it
while `unreachable_since <= now < unreachable_until`; recording and clearing are audited
(`case.unreachable.record` / `case.unreachable.clear`, with the values before).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unreachable_since", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("unreachable_until", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("unreachable_source", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("unreachable_source")
        batch_op.drop_column("unreachable_until")
        batch_op.drop_column("unreachable_since")
