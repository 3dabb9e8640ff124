"""The composition root of the HTTP service: `create_app(settings)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from adapters.ports import JobQueue
from adapters.rabbitmq import RabbitJobQueue
from dialer.api.body_limit import BodyLimit
from dialer.api.errors import install_error_handlers
from dialer.api.openapi import install_docs, install_openapi
from dialer.api.query import reject_unknown_query
from dialer.api.routes import router as v1
from dialer.api.routes.agents import page as desk_page
from dialer.api.routes.campaigns import router as campaigns
from dialer.api.routes.dashboard import page as dashboard_page
from dialer.api.routes.dashboard import router as dashboard
from dialer.api.routes.health import router as operations
from dialer.api.text import StorableText
from dialer.api.twilio_fast import FastWebhooks
from dialer.api.unexpected import UnexpectedErrors
from dialer.core.clock import Clock, system_clock
from dialer.core.errors import SchemaOutOfDateError
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import schema_is_current
from dialer.dispatch.deadletters import EmbeddedJobQueue
from dialer.dispatch.runtime import build_queue
from dialer.observability.metrics import Metrics, WebhookTiming
from dialer.services.keys import VerifiedKeys


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Refuses to start on an old schema; opens the database and the queue, closes both."""
    # No pre-ping: a connection the server closed is replaced at checkout without a round
    # trip (`dialer.db.engine`); the three a ping costs were a third of a read's.
    settings: Settings = app.state.settings
    engine = build_engine(settings, pool_size=settings.api_database_connections, pre_ping=False)
    try:
        current, found, heads = await schema_is_current(engine)
        if not current:
            raise SchemaOutOfDateError(
                f"database schema is at {sorted(found) or 'nothing'}, the service needs"
                f" {sorted(heads)}: run `dialer migrate` first"
            )
        app.state.engine = engine
        app.state.sessionmaker = build_sessionmaker(engine)
        if isinstance(app.state.queue, EmbeddedJobQueue):
            app.state.queue.bind(app.state.sessionmaker)  # its dead letters: the database
        if isinstance(app.state.queue, RabbitJobQueue):
            # Connected from the start, so /readyz can tell a broker that is down (the
            # robust connection reconnects by itself); unreachable: refuse to start.
            await app.state.queue.connect()
        yield
    finally:
        await app.state.queue.close()
        await engine.dispose()


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware stack; each added one wraps those before it, so the last is outermost."""
    # Latency of every Twilio webhook (/v1/twilio/...), as Twilio waits for it.
    app.add_middleware(WebhookTiming, metrics=app.state.metrics)
    # Inside the body limit: a NUL in a path, filter or JSON body is a 422 naming it
    # (PostgreSQL cannot store or compare it); import files are checked case by case.
    app.add_middleware(StorableText, skip_bodies=("/v1/imports",))
    # Outermost: a body over DIALER_MAX_BODY_BYTES is refused with 413 before anything reads it.
    app.add_middleware(BodyLimit, settings=settings)
    # Outermost: Twilio's status callbacks on PostgreSQL, answered without the FastAPI stack.
    app.add_middleware(FastWebhooks)
    # Outermost of all: an unexpected error is a 500 (503: database down) in the one error
    # shape, with a request id that its log line carries too.
    app.add_middleware(UnexpectedErrors)


def create_app(
    settings: Settings | None = None,
    clock: Clock = system_clock,
    metrics: Metrics | None = None,
    queue: JobQueue | None = None,
) -> FastAPI:
    settings = settings or Settings()

    app = FastAPI(
        title="collections-dialer",
        version="1",
        description="Cases, strategies and decisions for supervisors and agents.",
        lifespan=_lifespan,
        docs_url=None,  # /docs and /redoc: install_docs, with local assets (no CDN)
        redoc_url=None,
        # Every endpoint: an unknown query parameter is a 422 naming it, not ignored.
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.clock = clock
    # One registry per app; the composition root passes the one its services record into.
    app.state.metrics = metrics or Metrics()
    # API keys verified in the last few seconds: a request need not read its key's row.
    app.state.verified_keys = VerifiedKeys(settings.api_key_cache_seconds)
    _install_middleware(app, settings)
    install_error_handlers(app)
    install_openapi(app)  # the error shape of every 4xx, declared
    install_docs(app)
    app.include_router(v1, prefix="/v1")
    # Campaigns and dead letters; the queue (built, not connected) serves the dead letters.
    app.state.queue = queue or build_queue(settings, clock)
    app.include_router(campaigns, prefix="/v1")
    app.include_router(dashboard, prefix="/v1")  # the case view of /dashboard
    app.include_router(dashboard_page)  # /dashboard: static; it asks for an API key
    app.include_router(desk_page)  # /desk: static; it asks for an agent key
    app.include_router(operations)  # /healthz, /readyz, /metrics: unauthenticated
    return app
