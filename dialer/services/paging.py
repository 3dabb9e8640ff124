"""One cursor convention for every list: keyset pages in a stable order that ends in the
row's id, and an opaque cursor holding the last row's sort key.

A list reads `limit + 1` rows after the cursor's key; when the extra row exists the page
carries `next_cursor`, the key of its last row. Rows inserted while a client pages appear
on a later page or not at all, never twice; a deleted row leaves no gap.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from dialer.core.errors import FieldError, ValidationFailedError
from dialer.db.types import text_problem
from dialer.schemas.common import INT64_MAX

R = TypeVar("R")
# How a key's part is read back from its text: uuid.UUID, int, str, datetime, date.
KeyPart = Callable[[str], Any]
Key = tuple[Any, ...]


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps([_text(v) for v in key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad_cursor() -> ValidationFailedError:
    return ValidationFailedError(
        "invalid cursor", [FieldError("cursor", "not a cursor this list returned")]
    )


def decode_cursor(cursor: str, parts: Sequence[KeyPart]) -> Key:
    """The key a cursor holds, each part read by `parts`; 422 naming `cursor` otherwise."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        texts = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(texts, list) or len(texts) != len(parts):
            raise _bad_cursor()
        if not all(isinstance(t, str) and text_problem(t) is None for t in texts):
            raise _bad_cursor()
        key = tuple(read(text) for read, text in zip(parts, texts, strict=True))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise _bad_cursor() from exc
    for value in key:
        if isinstance(value, datetime) and value.tzinfo is None:
            raise _bad_cursor()
    return key


def bigint(text: str) -> int:
    """A BIGINT id (past it the database would refuse the comparison)."""
    value = int(text)
    if not 0 <= value <= INT64_MAX:
        raise ValueError("outside BIGINT")
    return value


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def day(text: str) -> date:
    return date.fromisoformat(text)


async def page(
    fetch: Callable[[Key | None, int], Awaitable[Sequence[R]]],
    *,
    cursor: str | None,
    limit: int,
    parts: Sequence[KeyPart],
    key: Callable[[R], Key],
) -> tuple[list[R], str | None]:
    """One page: `fetch(after, n)` reads up to n rows after the key `after` (None: from
    the start) in the list's order; returns the rows and the next page's cursor."""
    after = decode_cursor(cursor, parts) if cursor else None
    rows = list(await fetch(after, limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(key(rows[-1])) if more and rows else None
