from __future__ import annotations

from pydantic import BaseModel, Field


class RowErrorOut(BaseModel):
    line: int
    field: str | None
    reason: str
    external_ref: str | None


class KeptFactOut(BaseModel):
    """A row that left out a stored protective fact: the fact was kept, not cleared."""

    line: int
    external_ref: str
    field: str
    fact: str
    message: str


class ImportReportOut(BaseModel):
    lines: int
    cases_created: int
    cases_updated: int
    rejected: int
    errors: list[RowErrorOut]
    kept: list[KeptFactOut] = Field(
        default_factory=list, description="rows that would have cleared a protective fact"
    )
