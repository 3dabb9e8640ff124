"""Liveness, readiness and metrics endpoints: `/healthz`, `/readyz`, `/metrics`.

All three are unauthenticated (load balancers and Prometheus carry no API key), so they
say only check names and "ok"/"failed"; what failed and why goes to the (masked) log.
`/readyz` is 200 when the database answers, its schema is at the code's head and the
queue, if it can tell, is connected; else 503 naming each failed check. `/metrics` is 404
when `DIALER_METRICS_ENABLED=false`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.api.errors import error_body
from dialer.core.errors import FieldError, NotFoundError
from dialer.db.migrate import schema_is_current
from dialer.observability.metrics import Metrics

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["operations"])


@runtime_checkable
class ConnectionAware(Protocol):
    """A queue that knows whether its connection is up (RabbitJobQueue.is_connected)."""

    def is_connected(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    reason: str = ""  # public: a short fixed phrase, never exception text


async def check_database(engine: AsyncEngine | None) -> list[Check]:
    """`SELECT 1` within the timeout, then the schema revision against the code's heads."""
    if engine is None:
        return [Check("database", False, "not started")]
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            current, _, _ = await schema_is_current(engine)
    except TimeoutError:
        log.warning("readiness: the database did not answer in %ss", READY_TIMEOUT_SECONDS)
        return [Check("database", False, "timed out")]
    except Exception as exc:  # any driver error means "not ready", never a 500
        log.warning("readiness: the database is unreachable: %r", exc)
        return [Check("database", False, "unreachable")]
    return [
        Check("database", True),
        Check("schema", current, "" if current else "not at the latest migration"),
    ]


def check_queue(queue: object | None) -> Check | None:
    """None when the app has no queue; a queue without a connection to lose (in-process)
    is always ready."""
    if queue is None:
        return None
    if isinstance(queue, ConnectionAware):
        try:
            connected = queue.is_connected()
        except Exception as exc:
            log.warning("readiness: the queue could not tell its state: %r", exc)
            connected = False
        return Check("queue", connected, "" if connected else "not connected")
    return Check("queue", True)


async def readiness(state: Any) -> list[Check]:
    checks = await check_database(getattr(state, "engine", None))
    queue = check_queue(getattr(state, "queue", None))
    return [*checks, queue] if queue is not None else checks


@router.get("/healthz", summary="Liveness: the process serves requests")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable, schema current, queue connected",
    responses={503: {"description": "a dependency is not ready"}},
)
async def readyz(request: Request) -> JSONResponse:
    checks = await readiness(request.app.state)
    failed = [c for c in checks if not c.ok]
    if failed:
        names = ", ".join(c.name for c in failed)
        return JSONResponse(
            error_body(
                "not_ready",
                f"not ready: {names}",
                [FieldError(c.name, c.reason) for c in failed],
            ),
            status_code=503,
        )
    return JSONResponse({"status": "ready", "checks": {c.name: "ok" for c in checks}})


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition)",
    response_class=PlainTextResponse,  # declared as text/plain, which it is
    responses={404: {"description": "metrics are disabled"}},
)
async def metrics(request: Request) -> Response:
    if not request.app.state.settings.metrics_enabled:
        raise NotFoundError("metrics are disabled (DIALER_METRICS_ENABLED=false)")
    registry: Metrics = request.app.state.metrics
    body, content_type = registry.render()
    return Response(body, media_type=content_type)
