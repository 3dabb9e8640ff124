"""The dispatch fence: a lease on each reserved attempt and the instant its worker passed
the fence (issue 19, item 1).

`lease_owner` / `lease_until`: the worker that reserved the attempt and until when it may
dial it; the reconciler reclaims a `reserved` attempt only once its lease has run out.
`dialing_at`: when the worker moved it to `dialing` (compare-and-set on its lease, just
before the provider call); the reconciler looks a `dialing` one up only after the HTTP
client's whole timeout and a margin have passed since then.

An attempt with a provider id can never be `not_sent` (a CHECK). Rows written before
this revision that break it (a stalled worker dialled after its attempt was reclaimed)
become `unknown`: the reconciler looks their provider id up and records what happened,
and the audit replays them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE attempts SET state = 'unknown', error_code = 'sid_on_not_sent'"
        " WHERE state = 'not_sent' AND provider_sid IS NOT NULL"
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dialing_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            "ck_attempts_not_sent_no_sid", "state <> 'not_sent' OR provider_sid IS NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_constraint("ck_attempts_not_sent_no_sid", type_="check")
        batch_op.drop_column("dialing_at")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")
