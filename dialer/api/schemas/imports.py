from __future__ import annotations

from pydantic import BaseModel


class RowErrorOut(BaseModel):
    line: int
    field: str | None
    reason: str
    external_ref: str | None


class ImportReportOut(BaseModel):
    lines: int
    cases_created: int
    cases_updated: int
    rejected: int
    errors: list[RowErrorOut]
