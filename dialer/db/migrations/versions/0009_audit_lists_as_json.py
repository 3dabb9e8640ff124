"""The audit log's list values are JSON lists, not Python reprs.

Case, party and contact point changes used to store a list column's value (`flags`,
`consent`, `opted_out`) in `detail.before` / `detail.after` as the text of a Python list
(`"['sms', 'voice']"`), which the compliance audit read back with `ast.literal_eval`.
Such values become JSON lists; where a row's digest was the digest of the old values,
it is recomputed over the new ones (digests of anything else are left alone). The
column stays JSON (JSONB on PostgreSQL). Downgrade writes the reprs back.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 22:30:00
"""

import ast
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_AUDIT = sa.table(
    "audit_log",
    sa.column("id", sa.BigInteger()),
    sa.column("before_digest", sa.String()),
    sa.column("after_digest", sa.String()),
    sa.column("detail", JSON),
)
_LISTS = ("flags", "consent", "opted_out")  # the list columns an audited change records
_BATCH = 1000


def _digest(value: Any) -> str:
    """As `dialer.core.digest.digest` (kept here: a migration is frozen in time)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _to_json(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
        if isinstance(parsed, list | tuple) and all(isinstance(v, str) for v in parsed):
            return sorted(parsed)
    return value


def _to_repr(value: Any) -> Any:
    return str(list(value)) if isinstance(value, list) else value


def _convert(convert: Callable[[Any], Any]) -> None:
    conn = op.get_bind()
    after_id = -1
    while True:
        rows = conn.execute(
            sa.select(_AUDIT)
            .where(_AUDIT.c.id > after_id, sa.cast(_AUDIT.c.detail, sa.Text).like("%[%"))
            .order_by(_AUDIT.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        after_id = rows[-1].id
        updates = [u for u in (_updated(row, convert) for row in rows) if u is not None]
        if updates:
            conn.execute(
                _AUDIT.update()
                .where(_AUDIT.c.id == sa.bindparam("row_id"))
                .values(
                    detail=sa.bindparam("new_detail", type_=JSON),
                    before_digest=sa.bindparam("new_before"),
                    after_digest=sa.bindparam("new_after"),
                ),
                updates,
            )


def _updated(row: Any, convert: Callable[[Any], Any]) -> dict[str, Any] | None:
    """The new values of one row, or None when nothing in it changes."""
    detail = row.detail
    if not isinstance(detail, dict):
        return None
    new = dict(detail)
    digests = {"before": row.before_digest, "after": row.after_digest}
    for side in ("before", "after"):
        values = detail.get(side)
        if not isinstance(values, dict):
            continue
        converted = {k: convert(v) if k in _LISTS else v for k, v in values.items()}
        if converted != values:
            new[side] = converted
            if digests[side] == _digest(values):
                digests[side] = _digest(converted)
    if new == detail:
        return None
    return {
        "row_id": row.id,
        "new_detail": new,
        "new_before": digests["before"],
        "new_after": digests["after"],
    }


def upgrade() -> None:
    _convert(_to_json)


def downgrade() -> None:
    _convert(_to_repr)
