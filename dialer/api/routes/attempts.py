"""Results out: attempts (list and streamed export) and promises to pay by due day."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from dialer.api.deps import CaseReader, Exporter, PageLimit, SessionDep
from dialer.api.filters import PortfolioFilter
from dialer.domain.attempts import AttemptState
from dialer.schemas.attempts import (
    AttemptFilter,
    AttemptOut,
    ExportFormat,
    PromiseFilter,
    PromiseOut,
)
from dialer.schemas.common import Day, Instant, Page
from dialer.services import attempts
from strategy.model import Channel, Result

router = APIRouter(tags=["results"])
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]


def attempt_filter(
    portfolio: PortfolioFilter,
    campaign: Annotated[uuid.UUID | None, Query(description="a campaign's id")] = None,
    case: Annotated[uuid.UUID | None, Query(description="a case's id")] = None,
    channel: Channel | None = None,
    state: AttemptState | None = None,
    outcome: Annotated[Result | None, Query(description="the attempt's result")] = None,
    since: Annotated[Instant | None, Query(description="at or after (RFC 3339)")] = None,
    until: Annotated[Instant | None, Query(description="before (RFC 3339)")] = None,
) -> AttemptFilter:
    return AttemptFilter(
        campaign=campaign,
        case=case,
        portfolio=portfolio,
        channel=channel,
        state=state,
        outcome=outcome,
        since=since,
        until=until,
    )


AttemptFilterDep = Annotated[AttemptFilter, Depends(attempt_filter)]


@router.get("/attempts", response_model=Page[AttemptOut])
async def list_attempts(
    who: CaseReader,
    f: AttemptFilterDep,
    session: SessionDep,
    cursor: Cursor = None,
    limit: PageLimit = 100,
) -> object:
    """Attempts by instant (then id), filtered; `next_cursor` pages on."""
    rows, next_cursor = await attempts.list_attempts(session, f, cursor=cursor, limit=limit)
    return {"items": rows, "next_cursor": next_cursor}


@router.get(
    "/attempts/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}, "application/x-ndjson": {}},
            "description": "every matching attempt, streamed",
        }
    },
)
async def export_attempts(
    who: Exporter,
    request: Request,
    f: AttemptFilterDep,
    format: Annotated[ExportFormat, Query(description="csv or jsonl")] = ExportFormat.CSV,
) -> StreamingResponse:
    """Every matching attempt (the list's filters), by instant, with the number or
    address contacted, streamed as CSV or JSON lines. Supervisors, service keys and
    admins only: a bulk copy of the book's numbers is for reporting and the ledger's
    feed, not for working a case."""
    body = attempts.export_attempts(request.app.state.sessionmaker, f, format)
    return StreamingResponse(
        body,
        media_type=attempts.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="attempts.{format.value}"'},
    )


def promise_filter(
    portfolio: PortfolioFilter,
    due: Annotated[Day | None, Query(description="the due day, YYYY-MM-DD")] = None,
    due_from: Annotated[Day | None, Query(description="first due day of a range")] = None,
    due_to: Annotated[Day | None, Query(description="last due day of a range")] = None,
) -> PromiseFilter:
    return PromiseFilter(due=due, due_from=due_from, due_to=due_to, portfolio=portfolio)


@router.get("/promises", response_model=Page[PromiseOut])
async def list_promises(
    who: CaseReader,
    f: Annotated[PromiseFilter, Depends(promise_filter)],
    session: SessionDep,
    cursor: Cursor = None,
    limit: PageLimit = 100,
) -> object:
    """Promises to pay due on a day (`due`) or in a range, by due day (then attempt)."""
    rows, next_cursor = await attempts.list_promises(session, f, cursor=cursor, limit=limit)
    return {"items": rows, "next_cursor": next_cursor}
