"""`dialer campaign ...`, `dialer worker`, `dialer outbox relay`, `dialer dead-letters ...`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.ports import JobQueue
from dialer.core.clock import system_clock
from dialer.core.errors import DialerError
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.migrate import schema_is_current
from dialer.schemas.campaigns import CampaignIn

console = Console()
err = Console(stderr=True)
T = TypeVar("T")

campaign_app = typer.Typer(help="Morning campaigns: create, start, pause, resume, cancel.")
outbox_app = typer.Typer(help="The outbox of jobs waiting to be published.")
dead_app = typer.Typer(help="Jobs that kept failing: list and replay.")


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(dead_app, name="dead-letters")
    app.command("worker")(worker)


def _run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(factory())
    except DialerError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        for f in exc.fields:
            err.print(f"  {f.field}: {f.reason}")
        raise typer.Exit(1) from exc


def _checked(check: Callable[[], T]) -> Callable[[], Coroutine[Any, Any, T]]:
    """A synchronous check run through `_run`, so its `DialerError` is one line."""

    async def go() -> T:
        return check()

    return go


@contextlib.asynccontextmanager
async def _database(
    settings: Settings, *, pool_size: int | None = None
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    # A worker sizes its pool to its concurrency and skips the per-checkout ping: a job
    # that meets a dropped connection fails, is redelivered and finds a fresh connection.
    engine = build_engine(settings, pool_size=pool_size, pre_ping=pool_size is None)
    try:
        current, _, _ = await schema_is_current(engine)
        if not current:
            err.print("[red]error:[/red] the database schema is out of date: run `dialer migrate`")
            raise typer.Exit(2)
        yield build_sessionmaker(engine)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _operator_queue(settings: Settings) -> AsyncIterator[JobQueue]:
    """The queue an operator's command reads: RabbitMQ's, or the embedded queue bound to
    the database that keeps its dead letters (another process runs its worker)."""
    from dialer.dispatch.deadletters import EmbeddedJobQueue
    from dialer.dispatch.runtime import build_queue

    queue = build_queue(settings)
    try:
        if isinstance(queue, EmbeddedJobQueue):
            async with _database(settings) as maker:
                queue.bind(maker)
                yield queue
        else:
            yield queue
    finally:
        await queue.close()


# --- campaigns ---------------------------------------------------------------------------
@campaign_app.command("create")
def campaign_create(
    name: str,
    portfolio: Annotated[str, typer.Option()],
    window: Annotated[str, typer.Option(help="local start window, e.g. 09:00-11:30")],
    channels: Annotated[str, typer.Option(help="comma-separated: voice,sms,email")] = "voice",
    cps: Annotated[float, typer.Option(help="calls per second, all workers together")] = 1.0,
    max_in_progress: Annotated[int, typer.Option(help="0: no limit")] = 10,
    tiers: Annotated[str | None, typer.Option(help="only these tiers (comma-separated)")] = None,
) -> None:
    """Create a draft campaign and print its id."""
    from dialer.services import campaigns

    try:
        body = CampaignIn.model_validate(
            {
                "name": name,
                "portfolio": portfolio,
                "channels": [c.strip() for c in channels.split(",") if c.strip()],
                "window": window,
                "pacing_cps": cps,
                "max_in_progress": max_in_progress or None,
                "filter": {"tiers": tiers.split(",")} if tiers else {},
            }
        )
    except ValidationError as exc:
        for e in exc.errors():
            err.print(f"[red]error:[/red] {'.'.join(map(str, e['loc']))}: {e['msg']}")
        raise typer.Exit(1) from exc

    async def go() -> uuid.UUID:
        async with _database(Settings()) as maker, maker() as session:
            row = await campaigns.create_campaign(session, body, actor="cli", now=system_clock())
            return row.id

    typer.echo(str(_run(go)))


def _transition(target: str) -> Callable[[uuid.UUID], None]:
    def command(campaign_id: uuid.UUID) -> None:
        from dialer.services import campaigns

        async def go() -> str:
            async with _database(Settings()) as maker, maker() as session:
                row = await campaigns.transition(
                    session, campaign_id, target, actor="cli", now=system_clock()
                )
                return row.status

        console.print(f"campaign {campaign_id} is {_run(go)}")

    return command


for _verb, _target, _help in (
    ("start", "running", "Start: `dialer worker` processes plan and dispatch it."),
    ("pause", "paused", "Pause: nothing new is reserved; queued jobs wait."),
    ("resume", "running", "Resume a paused campaign."),
    ("cancel", "cancelled", "Cancel: attempts not yet reserved are cancelled."),
):
    campaign_app.command(_verb, help=_help)(_transition(_target))


@campaign_app.command("status")
def campaign_status(
    campaign_id: uuid.UUID,
    as_json: Annotated[bool, typer.Option("--json", help="print the progress as JSON")] = False,
) -> None:
    """Live progress: planned, queued, dispatched, in progress, outcomes, refusals by rule."""
    from dialer.services import campaigns

    async def go() -> dict[str, object]:
        async with _database(Settings()) as maker, maker() as session:
            return (await campaigns.progress(session, campaign_id)).model_dump(mode="json")

    progress = _run(go)
    if as_json:
        typer.echo(json.dumps(progress, indent=2))
        return
    table = Table("", "")
    warnings = progress.pop("warnings", [])
    for key, value in progress.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)
    for warning in warnings if isinstance(warnings, list) else []:
        err.print(f"[bold red]WARNING:[/bold red] {warning}")


@campaign_app.command("list")
def campaign_list(
    portfolio: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
) -> None:
    from dialer.services import campaigns

    async def go() -> list[tuple[str, ...]]:
        async with _database(Settings()) as maker, maker() as session:
            rows = await campaigns.list_campaigns(
                session, portfolio=portfolio, status=status, limit=500
            )
            return [
                (str(r.id), r.name, r.portfolio, r.status, r.window or "", str(r.planned))
                for r in rows
            ]

    table = Table("id", "name", "portfolio", "status", "window", "planned")
    for row in _run(go):
        table.add_row(*row)
    console.print(table)


# --- the worker and the outbox ------------------------------------------------------------
def worker(
    concurrency: Annotated[int | None, typer.Option(help="jobs handled at a time")] = None,
) -> None:
    """Consume jobs, relay the outbox, plan running campaigns, reconcile unknown attempts.
    Run as many as needed on any hosts (RabbitMQ: DIALER_QUEUE_URL). Stops on SIGTERM."""
    from dialer.dispatch.runtime import (
        Runtime,
        freeze_start_up_objects,
        telephony_banner,
        worker_pool_size,
    )
    from dialer.observability import start_worker_observability

    settings = Settings()
    banner = _run(_checked(lambda: telephony_banner(settings)))  # one line if misconfigured
    if banner:
        err.print(f"[bold red]{banner}[/bold red]")
    # masked JSON logs; /metrics for the healthcheck, recorded by the dispatcher and planner
    metrics = start_worker_observability(settings)

    jobs = concurrency or settings.worker_concurrency

    async def go() -> None:
        async with _database(settings, pool_size=worker_pool_size(settings, jobs)) as maker:
            bind = maker.kw["bind"]
            runtime = Runtime.build(settings, bind, maker, metrics=metrics)
            freeze_start_up_objects()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, runtime.stop.set)
            err.print(
                f"worker {runtime.owner} running (queue: {type(runtime.queue).__name__}, "
                f"telephony: {type(runtime.telephony).__name__})"
            )
            await runtime.run(jobs)

    _run(go)


@outbox_app.command("relay")
def outbox_relay(
    once: Annotated[bool, typer.Option(help="publish what is due, then exit")] = False,
) -> None:
    """Publish outbox rows (`dialer worker` does this too; this is for operators)."""
    from dialer.dispatch import outbox
    from dialer.dispatch.runtime import build_queue

    settings = Settings()

    async def go() -> int:
        async with _database(settings) as maker:
            queue = build_queue(settings, system_clock, maker)
            try:
                if once:
                    return await outbox.relay_all(maker, queue, system_clock())
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await outbox.run_relay(maker, queue, system_clock, stop=stop)
                return 0
            finally:
                await queue.close()

    published = _run(go)
    if once:
        console.print(f"published {published} jobs")


# --- dead letters ---------------------------------------------------------------------------
@dead_app.command("list")
def dead_letters_list(limit: Annotated[int, typer.Option()] = 100) -> None:
    """The oldest dead letters (left in place)."""

    async def go() -> list[tuple[str, ...]]:
        async with _operator_queue(Settings()) as queue:
            letters = await queue.dead_letters(limit)
            return [
                (
                    d.message_id,
                    d.job.case_id if d.job else "",
                    d.reason,
                    d.died_at.isoformat() if d.died_at else "",
                )
                for d in letters
            ]

    table = Table("attempt", "case", "reason", "died at")
    for row in _run(go):
        table.add_row(*row)
    console.print(table)


@dead_app.command("replay")
def dead_letters_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="attempt ids; none: all")] = None,
) -> None:
    """Move dead letters back to the work queue (a worker still acts at most once)."""

    async def go() -> int:
        async with _operator_queue(Settings()) as queue:
            return await queue.replay_dead_letters(ids or None)

    console.print(f"replayed {_run(go)} dead letters")
