"""A phone number's facts, stored at import: the candidate zones `phonenumbers` places it
in and whether it is a mobile line. The planner decides for a million numbers a morning;
deriving these again for each one was most of its time.

`number_zones` NULL: nothing stored (rows written before this revision, email addresses);
the engine derives both facts from the number at decision time, as before. Not NULL (a
list, possibly empty when the library cannot place the number): the stored facts, with
`number_mobile` NULL meaning the line type is unknown. The existing `mobile` column stays
what the caller said (None: not said) and wins over `number_mobile`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("contact_points", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number_zones", JSON, nullable=True))
        batch_op.add_column(sa.Column("number_mobile", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact_points", schema=None) as batch_op:
        batch_op.drop_column("number_mobile")
        batch_op.drop_column("number_zones")
