"""Bulk import of cases from CSV or JSON lines, through the same schema as the API.

JSON lines: one create-case document per line. CSV: one row per contact point (see
`CSV_COLUMNS`); consecutive rows with the same portfolio and external_ref form one case,
parties within it are told apart by `party_ref` (or by role and name). A bad case is
reported with the line it is on and why; the good ones around it are committed in
batches; re-importing the same file updates the same rows and creates nothing new.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import (
    FieldError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
    field_path,
)
from dialer.core.settings import Settings
from dialer.db.models import Portfolio
from dialer.db.repositories import audit, portfolios
from dialer.db.types import unstorable
from dialer.facts.convert import CaseRows, case_rows
from dialer.schemas.cases import CaseIn
from dialer.services import protective
from dialer.services.normalise import NumberFacts, normalise_case

CASE_COLUMNS = (
    "portfolio",
    "external_ref",
    "amount",
    "currency",
    "due_date",
    "balance",
    "stage",
    "stage_started_on",
    "status",
    "flags",
    "country",
)
PARTY_COLUMNS = (
    "party_ref",
    "party_role",
    "party_name",
    "relation",
    "knows_of_debt",
    "refused_contact",
    "party_timezone",
    "title",
)
POINT_COLUMNS = ("kind", "value", "consent", "opted_out", "validity", "timezone", "do_not_call")
CSV_COLUMNS = CASE_COLUMNS + PARTY_COLUMNS + POINT_COLUMNS
_LISTS = ("flags", "consent", "opted_out")  # written "voice;sms"
_BOOLS = ("knows_of_debt", "refused_contact", "do_not_call")


class ImportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str | None
    reason: str
    external_ref: str | None = None


@dataclass(frozen=True, slots=True)
class KeptFact:
    """A row that would have cleared a stored protective fact: the fact was kept."""

    line: int
    external_ref: str
    field: str
    fact: str
    message: str  # "kept: cease, recorded 2026-12-01 02:00 UTC by supervisor:mei (api)"


@dataclass(slots=True)
class ImportReport:
    lines: int = 0
    cases_created: int = 0
    cases_updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    kept: list[KeptFact] = field(default_factory=list)


def format_for(filename: str | None, content_type: str | None) -> ImportFormat:
    ctype = (content_type or "").split(";")[0].strip().lower()
    name = (filename or "").lower()
    if ctype in ("text/csv", "application/csv") or name.endswith(".csv"):
        return ImportFormat.CSV
    if ctype in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines") or (
        name.endswith((".jsonl", ".ndjson"))
    ):
        return ImportFormat.JSONL
    raise UnsupportedMediaTypeError(
        "send text/csv or application/x-ndjson (or a .csv / .jsonl file)"
    )


def read_lines(
    fh: IO[bytes], progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, str]]:
    """(line number, text) from a binary file, reporting bytes read as it goes."""
    done = 0
    for number, raw in enumerate(fh, start=1):
        done += len(raw)
        if progress and number % 1000 == 0:
            progress(done)
        yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace")
    if progress:
        progress(done)


def lines_of(data: bytes) -> Iterator[tuple[int, str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailedError(f"the file is not UTF-8 (byte {exc.start})") from exc
    yield from enumerate(text.splitlines(keepends=True), start=1)


@dataclass(slots=True)
class _Parsed:
    """One case document with where its parts came from, or the reason it cannot be read."""

    line: int
    doc: dict[str, Any] | None
    lines: dict[tuple[int, ...], int] = field(default_factory=dict)
    error: RowError | None = None


def _jsonl(lines: Iterable[tuple[int, str]]) -> Iterator[_Parsed]:
    for number, text in lines:
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            yield _Parsed(number, None, error=RowError(number, None, f"not JSON: {exc.msg}"))
            continue
        except RecursionError:  # the decoder's recursion limit, about 1,000 levels
            reason = "not JSON this service reads: nested too deeply"
            yield _Parsed(number, None, error=RowError(number, None, reason))
            continue
        if not isinstance(doc, dict):
            yield _Parsed(number, None, error=RowError(number, None, "a line must be an object"))
            continue
        yield _Parsed(number, doc)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.replace(",", ";").split(";") if v.strip()]


def _cell(row: dict[str, str], column: str) -> Any:
    value = (row.get(column) or "").strip()
    if column in _LISTS:
        return _split(value)
    if column in _BOOLS:
        return value.lower() in ("1", "true", "yes", "y") if value else None
    return value or None


class _UnreadableError(Exception):
    """The file cannot be read on from `line`: nothing after it can be trusted."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


class ImportAbortedError(ValidationFailedError):
    """A file-level error: the batches before it stay committed, and the error says how
    many cases they hold (`cases_committed`); importing the fixed file again completes the
    import, updating those cases rather than duplicating them."""


def _aborted(exc: _UnreadableError, report: ImportReport) -> ImportAbortedError:
    """A file-level read error, with the counts committed before it (every batch before
    the line is written; the batch being gathered is not)."""
    committed = report.cases_created + report.cases_updated
    return ImportAbortedError(
        f"the file cannot be read past line {exc.line}: {exc.reason}. Cases imported and"
        f" committed before it: {committed}; none after it. Fix the file and import it"
        " again: cases already imported are updated, not duplicated.",
        [FieldError("file", f"line {exc.line}: {exc.reason}")],
        extra={
            "line": exc.line,
            "cases_committed": committed,
            "cases_created": report.cases_created,
            "cases_updated": report.cases_updated,
        },
    )


def _csv(lines: Iterable[tuple[int, str]]) -> Iterator[_Parsed]:
    numbers: list[int] = []

    def texts() -> Iterator[str]:
        for number, text in lines:
            numbers.append(number)
            yield text

    # strict: a quote that is never closed, or closed mid-field, is an error rather than a
    # field that silently swallows the rows after it.
    reader = csv.DictReader(texts(), strict=True)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise _UnreadableError(1, _csv_reason(exc)) from exc
    rows = _csv_rows(reader, numbers)
    missing = {"external_ref", "party_role"} - set(header or ())
    if missing:  # no row can be read: the whole file is refused, not reported row by row
        raise _UnreadableError(1, f"not an import file: missing columns {sorted(missing)}")
    current: _Parsed | None = None
    key: tuple[str, str] | None = None
    party_index: dict[str, int] = {}
    for row in rows:
        line = numbers[-1] if numbers else reader.line_num
        if not any((v or "").strip() for v in row.values()):
            continue
        row_key = (_cell(row, "portfolio") or "", _cell(row, "external_ref") or "")
        if current is None or row_key != key:
            if current is not None:
                yield current
            key, party_index = row_key, {}
            doc = {c: _cell(row, c) for c in CASE_COLUMNS}
            doc = {k: v for k, v in doc.items() if v not in (None, [])}
            doc["parties"] = []
            current = _Parsed(line, doc)
        _add_row(current, row, line, party_index)
    if current is not None:
        yield current


def _add_row(current: _Parsed, row: dict[str, str], line: int, party_index: dict[str, int]) -> None:
    """One CSV row into its case document: its party (new, or the one it names again) and
    its contact point, each remembering the line it came from."""
    assert current.doc is not None
    role = _cell(row, "party_role")
    pref = _cell(row, "party_ref") or f"{role}:{_cell(row, 'party_name') or ''}"
    if pref not in party_index:
        party = {
            "ref": pref,
            "role": role,
            "name": _cell(row, "party_name") or "",
            "relation": _cell(row, "relation"),
            "knows_of_debt": bool(_cell(row, "knows_of_debt")),
            "refused_contact": bool(_cell(row, "refused_contact")),
            "timezone": _cell(row, "party_timezone"),
            "title": _cell(row, "title"),
            "contact_points": [],
        }
        party_index[pref] = len(current.doc["parties"])
        current.lines[(party_index[pref],)] = line
        current.doc["parties"].append(party)
    p = party_index[pref]
    if _cell(row, "value"):
        points = current.doc["parties"][p]["contact_points"]
        current.lines[(p, len(points))] = line
        points.append(
            {
                "kind": _cell(row, "kind") or "phone",
                "value": _cell(row, "value"),
                "consent": _cell(row, "consent"),
                "opted_out": _cell(row, "opted_out"),
                "validity": _cell(row, "validity") or "unverified",
                "timezone": _cell(row, "timezone"),
                "do_not_call": bool(_cell(row, "do_not_call")),
            }
        )


def _csv_rows(reader: csv.DictReader[str], numbers: list[int]) -> Iterator[dict[str, str]]:
    """The reader's rows; a row it cannot read raises `_UnreadableError` with the line it
    starts on."""
    while True:
        start = (numbers[-1] if numbers else 0) + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _UnreadableError(start, _csv_reason(exc)) from exc
        yield row


def _csv_reason(exc: csv.Error) -> str:
    reason = str(exc)
    if "field limit" in reason:
        reason = (
            f"a field is longer than {csv.field_size_limit()} characters"
            " (a quote that is never closed?)"
        )
    elif "end of data" in reason:
        reason = "a quote opened on this line is never closed"
    return f"not CSV: {reason}"


def _line_for(parsed: _Parsed, path: str) -> int:
    """The line a field came from: parties[1].contact_points[0].value -> that row."""
    indexes = [int(i) for i in re.findall(r"\[(\d+)\]", path)]
    if path.startswith("parties[") and indexes:
        return parsed.lines.get(tuple(indexes[:2]), parsed.lines.get((indexes[0],), parsed.line))
    return parsed.line


def _lines_of(parsed: _Parsed, rows: CaseRows) -> dict[Any, int]:
    """The line each of a case's rows came from (parties and points keep their order)."""
    out: dict[Any, int] = {rows.case["id"]: parsed.line}
    for i, party in enumerate(rows.parties):
        out[party["id"]] = parsed.lines.get((i,), parsed.line)
        points = [cp for cp in rows.contact_points if cp["party_id"] == party["id"]]
        for j, cp in enumerate(points):
            out[cp["id"]] = parsed.lines.get((i, j), out[party["id"]])
    return out


class _Importer:
    """One import: case documents in, batches of rows upserted and committed, the report."""

    def __init__(
        self, session: AsyncSession, *, default_portfolio: str | None, actor: str, now: datetime
    ) -> None:
        self.session, self.default_portfolio = session, default_portfolio
        self.actor, self.now = actor, now
        self.report = ImportReport()
        self.known: dict[str, Portfolio | None] = {}
        self.rows: list[CaseRows] = []
        self.keys: set[tuple[str, str]] = set()
        self.lines: dict[Any, int] = {}  # case, party and contact point id -> its line
        self.writing: asyncio.Task[None] | None = None  # the batch being written, if any

    def error(self, parsed: _Parsed, field: str | None, reason: str, ref: str | None) -> None:
        line = _line_for(parsed, field) if field else parsed.line
        self.report.errors.append(RowError(line, field, reason, ref))

    async def add(self, parsed: _Parsed, batch_size: int) -> None:
        """Validate and normalise one document; its rows join the batch, or its errors the
        report."""
        if parsed.error is not None or parsed.doc is None:
            if parsed.error:
                self.report.errors.append(parsed.error)
            return
        ref = parsed.doc.get("external_ref")
        ref = ref if isinstance(ref, str) else None
        if unfit := unstorable(parsed.doc):  # a NUL: PostgreSQL cannot store it
            return self.error(parsed, unfit.field, unfit.reason, ref)
        if parsed.doc.get("portfolio") is None:
            parsed.doc["portfolio"] = self.default_portfolio
        try:
            doc = CaseIn.model_validate(parsed.doc)
        except ValidationError as exc:
            for e in exc.errors():
                self.error(parsed, field_path(e["loc"]), e["msg"], ref)
            return
        name = doc.portfolio or ""
        if name not in self.known:
            await self.written()  # the session is the writer's while it writes
            self.known[name] = await portfolios.get(self.session, name) if name else None
        portfolio = self.known[name]
        if portfolio is None:
            reason = f"no portfolio {name!r}" if name else "no portfolio given (use --portfolio)"
            self.report.errors.append(RowError(parsed.line, "portfolio", reason, ref))
            return
        numbers: dict[str, NumberFacts] = {}
        try:
            doc = normalise_case(doc, portfolio.country, numbers)
        except ValidationFailedError as exc:
            for f in exc.fields:
                self.error(parsed, f.field, f.reason, ref)
            return
        key = (portfolio.name, doc.external_ref)
        if key in self.keys:  # the same case twice in one statement: flush the first
            await self.flush()
        rows = case_rows(doc, portfolio.name, self.now, numbers)
        self.rows.append(rows)
        self.keys.add(key)
        self.lines.update(_lines_of(parsed, rows))
        if len(self.rows) >= batch_size:
            await self.flush()
        else:
            await asyncio.sleep(0)  # the writer's next round trip, if it waits for one

    async def flush(self) -> None:
        """Hand the batch to the writer, which upserts and commits it while the next
        batch is read and validated: this process's work and the database's overlap.
        Batches are written one at a time, in order."""
        if not self.rows:
            return
        batch = (self.rows, self.keys, self.lines)
        self.rows, self.keys, self.lines = [], set(), {}
        await self.written()
        self.writing = asyncio.create_task(self._write(*batch))

    async def written(self) -> None:
        """Wait for the batch being written (its failure is raised here)."""
        if self.writing is not None:
            task, self.writing = self.writing, None
            await task

    async def _write(
        self, rows: list[CaseRows], keys: set[tuple[str, str]], lines: dict[Any, int]
    ) -> None:
        """Upsert and commit a batch, keeping stored protective facts (invariant 8)."""
        done = await protective.upsert(
            self.session, rows, actor=self.actor, source="import", now=self.now
        )
        existing = done.existing  # read under the cases' lock, before the upsert
        created = len(rows) - existing
        await audit.append(
            self.session,
            at=self.now,
            actor=self.actor,
            action="case.import",
            entity="import",
            entity_id=",".join(sorted({p for p, _ in keys})),
            detail={"created": created, "updated": existing, "cases": len(rows)},
        )
        await self.session.commit()
        self.report.cases_created += created
        self.report.cases_updated += existing
        self.report.kept += [
            KeptFact(lines.get(k.entity_id, 0), k.external_ref, k.field, k.fact, k.message)
            for k in done.kept
        ]


async def import_stream(
    session: AsyncSession,
    lines: Iterable[tuple[int, str]],
    *,
    fmt: ImportFormat,
    default_portfolio: str | None,
    settings: Settings,
    actor: str,
    now: datetime,
) -> ImportReport:
    importer = _Importer(session, default_portfolio=default_portfolio, actor=actor, now=now)
    counted = _count(lines, importer.report)
    parsed = _csv(counted) if fmt == ImportFormat.CSV else _jsonl(counted)
    try:
        for doc in parsed:
            await importer.add(doc, settings.import_batch_size)
        await importer.flush()
    except _UnreadableError as exc:
        await importer.written()
        raise _aborted(exc, importer.report) from exc
    finally:
        await importer.written()
    return importer.report


def _count(lines: Iterable[tuple[int, str]], report: ImportReport) -> Iterator[tuple[int, str]]:
    for number, text in lines:
        report.lines = number
        yield number, text
