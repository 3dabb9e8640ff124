"""Keyset paging: the rows after a key in a stable order (the SQL half of
`dialer.services.paging`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVarTuple

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

Ts = TypeVarTuple("Ts")
Column = QueryableAttribute[Any] | ColumnElement[Any]


def after_key(
    stmt: Select[*Ts],
    order: Sequence[Column],
    after: Sequence[Any] | None,
    limit: int,
    *,
    descending: bool = False,
) -> Select[*Ts]:
    """`stmt` ordered by `order` (its last column unique; newest first if `descending`),
    from the row after `after` (the previous page's last key), at most `limit` rows. The
    comparison is spelt out (a > x or a = x and b > y) so both databases use the leading
    column's index."""
    if after is not None:
        clauses: list[ColumnElement[bool]] = []
        for n, column in enumerate(order):
            equal = [order[i] == after[i] for i in range(n)]
            beyond = column < after[n] if descending else column > after[n]
            clauses.append(and_(*equal, beyond))
        stmt = stmt.where(or_(*clauses))
    ordered = [c.desc() for c in order] if descending else list(order)
    return stmt.order_by(*ordered).limit(limit)
