"""Results out: attempts listed and exported (CSV or JSON lines, streamed in keyset
batches so memory stays flat whatever the size), and promises to pay by due day."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.db.repositories import attempts
from dialer.schemas.attempts import EXPORT_COLUMNS, AttemptFilter, ExportFormat, PromiseFilter
from dialer.services import paging

_ATTEMPT_KEY = (paging.instant, uuid.UUID)
_PROMISE_KEY = (paging.day, uuid.UUID)
EXPORT_BATCH = 1000
MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSONL: "application/x-ndjson",
}


def _filters(f: AttemptFilter) -> dict[str, Any]:
    return f.model_dump()


async def list_attempts(
    session: AsyncSession, f: AttemptFilter, *, cursor: str | None, limit: int
) -> tuple[list[RowMapping], str | None]:
    """A page of attempts by (at, id) and the next page's cursor."""

    async def fetch(after: paging.Key | None, n: int) -> Sequence[RowMapping]:
        return await attempts.page(session, after=after, limit=n, **_filters(f))

    return await paging.page(
        fetch, cursor=cursor, limit=limit, parts=_ATTEMPT_KEY, key=lambda r: (r["at"], r["id"])
    )


async def list_promises(
    session: AsyncSession, f: PromiseFilter, *, cursor: str | None, limit: int
) -> tuple[list[RowMapping], str | None]:
    """A page of promises by (due day, attempt id) and the next page's cursor."""
    due_from, due_to = f.bounds()

    async def fetch(after: paging.Key | None, n: int) -> Sequence[RowMapping]:
        return await attempts.promises(
            session,
            due_from=due_from,
            due_to=due_to,
            portfolio=f.portfolio,
            after=after,
            limit=n,
        )

    return await paging.page(
        fetch,
        cursor=cursor,
        limit=limit,
        parts=_PROMISE_KEY,
        key=lambda r: (r["promise_date"], r["attempt_id"]),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return value


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection:
# an imported `external_ref` or an email address of "=HYPERLINK(...)"), unless the cell
# is a plain number (an E.164 number, a negative amount), which no formula can be.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def _csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a formula-like text gets a leading `'`."""
    if value is None:
        return ""
    formula = isinstance(value, str) and value.startswith(_FORMULA_START)
    return "'" + value if formula and not _PLAIN_NUMBER.fullmatch(value) else value


def _line(row: RowMapping, fmt: ExportFormat) -> str:
    values = [_plain(row[c]) for c in EXPORT_COLUMNS]
    if fmt is ExportFormat.JSONL:  # data for programs: the values exactly as stored
        return json.dumps(dict(zip(EXPORT_COLUMNS, values, strict=True)), ensure_ascii=False) + "\n"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(_csv_cell(v) for v in values)
    return out.getvalue()


async def export_attempts(
    maker: async_sessionmaker[AsyncSession],
    f: AttemptFilter,
    fmt: ExportFormat,
    *,
    batch: int = EXPORT_BATCH,
) -> AsyncIterator[str]:
    """The matching attempts with the number or address contacted, as CSV (a header
    line first) or JSON lines, `batch` rows per read. Each batch has its own short
    session, so a slow reader holds no transaction open."""
    if fmt is ExportFormat.CSV:
        yield ",".join(EXPORT_COLUMNS) + "\n"
    after: paging.Key | None = None
    while True:
        async with maker() as session:
            rows = await attempts.page(
                session, after=after, limit=batch, with_contact=True, **_filters(f)
            )
        if not rows:
            return
        yield "".join(_line(row, fmt) for row in rows)
        if len(rows) < batch:
            return
        after = (rows[-1]["at"], rows[-1]["id"])
