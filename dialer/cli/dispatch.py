"""`dialer campaign ...`, `dialer worker`, `dialer outbox relay`, `dialer dead-letters ...`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import typer
from rich.table import Table

from adapters.ports import JobQueue
from dialer.cli.common import (
    OPERATIONAL,
    checked,
    console,
    database,
    err,
    fail,
    run,
    warn_loudly,
)
from dialer.core.clock import system_clock
from dialer.core.errors import DialerError
from dialer.core.settings import Settings
from dialer.schemas.campaigns import CampaignIn, CampaignStatus

campaign_app = typer.Typer(help="Morning campaigns: create, start, pause, resume, cancel.")
outbox_app = typer.Typer(help="The outbox of jobs waiting to be published.")
dead_app = typer.Typer(help="Jobs that kept failing: list and replay.")


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(dead_app, name="dead-letters")
    app.command("worker", epilog="Example: dialer worker --concurrency 20")(worker)


@contextlib.asynccontextmanager
async def _operator_queue(settings: Settings) -> AsyncIterator[JobQueue]:
    """The queue an operator's command reads: RabbitMQ's, or the embedded queue bound to
    the database that keeps its dead letters (another process runs its worker)."""
    from dialer.dispatch.deadletters import EmbeddedJobQueue
    from dialer.dispatch.runtime import build_queue

    queue = build_queue(settings)
    try:
        if isinstance(queue, EmbeddedJobQueue):
            async with database(settings) as maker:
                queue.bind(maker)
                yield queue
        else:
            yield queue
    finally:
        await queue.close()


# --- campaigns ---------------------------------------------------------------------------
@campaign_app.command(
    "create",
    epilog="Example: dialer campaign create morning --portfolio cn-loans --window 09:00-11:30"
    " --channels voice,sms --cps 2 --tiers early,mid",
)
def campaign_create(
    name: Annotated[str, typer.Argument(help="a name for people (1-100 characters)")],
    portfolio: Annotated[str, typer.Option(help="the portfolio whose open cases it plans")],
    window: Annotated[
        str,
        typer.Option(
            help="local start window in each party's zone, e.g. 09:00-11:30; it must meet"
            " the hours the portfolio's guardrail profile allows"
        ),
    ],
    channels: Annotated[str, typer.Option(help="comma-separated: voice,sms,email")] = "voice",
    cps: Annotated[float, typer.Option(help="calls per second, all workers together")] = 1.0,
    max_in_progress: Annotated[
        int, typer.Option(help="attempts in progress at most; 0: no limit")
    ] = 10,
    tiers: Annotated[
        str | None, typer.Option(help="only these tiers of the active strategy (comma-separated)")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="ivr (automated flow), preview, progressive or predictive")
    ] = "ivr",
    wrap_up_limit: Annotated[
        int | None, typer.Option(help="seconds of wrap-up allowed an agent (agent modes)")
    ] = None,
) -> None:
    """Create a draft campaign and print its id (`dialer campaign start ID` starts it)."""
    from dialer.services import campaigns

    body = checked(
        CampaignIn,
        {
            "name": name,
            "portfolio": portfolio,
            "channels": [c.strip() for c in channels.split(",") if c.strip()],
            "window": window,
            "pacing_cps": cps,
            "max_in_progress": max_in_progress or None,
            "filter": {"tiers": [t.strip() for t in tiers.split(",")]} if tiers else {},
            "mode": mode,
            "wrap_up_limit_s": wrap_up_limit,
        },
        _CAMPAIGN_OPTIONS,
    )

    async def go() -> uuid.UUID:
        async with database(Settings()) as maker, maker() as session:
            row = await campaigns.create_campaign(session, body, actor="cli", now=system_clock())
            return row.id

    typer.echo(str(run(go)))


_CAMPAIGN_OPTIONS = {
    "name": "NAME",
    "portfolio": "--portfolio",
    "channels": "--channels",
    "window": "--window",
    "pacing_cps": "--cps",
    "max_in_progress": "--max-in-progress",
    "filter": "--tiers",
    "mode": "--mode",
    "wrap_up_limit_s": "--wrap-up-limit",
}
CampaignId = Annotated[uuid.UUID, typer.Argument(help="the id `campaign create` printed")]


def _transition(target: str) -> Callable[[uuid.UUID], None]:
    def command(campaign_id: CampaignId) -> None:
        from dialer.services import campaigns

        async def go() -> str:
            async with database(Settings()) as maker, maker() as session:
                row = await campaigns.transition(
                    session, campaign_id, target, actor="cli", now=system_clock()
                )
                return row.status

        console.print(f"campaign {campaign_id} is {run(go)}")

    return command


for _verb, _target, _help in (
    ("start", "running", "Start: `dialer worker` processes plan and dispatch it."),
    ("pause", "paused", "Pause: nothing new is reserved; queued jobs wait."),
    ("resume", "running", "Resume a paused campaign."),
    ("cancel", "cancelled", "Cancel: attempts not yet reserved are cancelled."),
):
    campaign_app.command(_verb, help=_help, epilog=f"Example: dialer campaign {_verb} ID")(
        _transition(_target)
    )


@campaign_app.command("status", epilog="Example: dialer campaign status ID --json")
def campaign_status(
    campaign_id: CampaignId,
    as_json: Annotated[bool, typer.Option("--json", help="print the progress as JSON")] = False,
) -> None:
    """Live progress: planned, queued, dispatched, in progress, outcomes, refusals by rule."""
    from dialer.services import campaigns

    async def go() -> dict[str, object]:
        async with database(Settings()) as maker, maker() as session:
            return (await campaigns.progress(session, campaign_id)).model_dump(mode="json")

    progress = run(go)
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


@campaign_app.command("list", epilog="Example: dialer campaign list --status running")
def campaign_list(
    portfolio: Annotated[str | None, typer.Option(help="only this portfolio's")] = None,
    status: Annotated[
        CampaignStatus | None, typer.Option(help="only campaigns in this status")
    ] = None,
) -> None:
    """The newest 500 campaigns (newest first)."""
    from dialer.services import campaigns

    async def go() -> list[tuple[str, ...]]:
        async with database(Settings()) as maker, maker() as session:
            rows, _ = await campaigns.list_campaigns(
                session, portfolio=portfolio, status=status, limit=500
            )
            return [
                (str(r.id), r.name, r.portfolio, r.status, r.window or "", str(r.planned))
                for r in rows
            ]

    table = Table("id", "name", "portfolio", "status", "window", "planned")
    for row in run(go):
        table.add_row(*row)
    console.print(table)


@campaign_app.command(
    "agents", epilog="Example: dialer campaign agents ID --set agent-7,agent-9  (--set '': none)"
)
def campaign_agents(
    campaign_id: CampaignId,
    assign: Annotated[
        str | None,
        typer.Option(
            "--set",
            help="assign exactly these agents (agent keys' names, comma-separated); an empty"
            " value assigns none: every agent may take the campaign's calls",
        ),
    ] = None,
) -> None:
    """The agents who take the campaign's calls (none assigned: the whole floor)."""
    from dialer.services import campaign_agents as assignment

    async def go() -> list[str]:
        async with database(Settings()) as maker, maker() as session:
            if assign is None:
                rows = await assignment.assigned(session, campaign_id)
            else:
                names = [n.strip() for n in assign.split(",") if n.strip()]
                rows = await assignment.assign(
                    session, campaign_id, names, actor="cli", now=system_clock()
                )
            return [r.name for r in rows]

    names = run(go)
    console.print("\n".join(names) if names else "none assigned: every agent takes its calls")


# --- the worker and the outbox ------------------------------------------------------------
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="jobs handled at a time (DIALER_WORKER_CONCURRENCY)")
    ] = None,
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
    try:
        banner = telephony_banner(settings)
    except DialerError as exc:  # settings whose telephony cannot work: one line
        fail(exc.message, OPERATIONAL)
    # masked JSON logs; /metrics for the healthcheck, recorded by the dispatcher and planner
    metrics = start_worker_observability(settings)
    if banner:
        warn_loudly(banner)

    jobs = concurrency or settings.worker_concurrency

    async def go() -> None:
        async with database(settings, pool_size=worker_pool_size(settings, jobs)) as maker:
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

    run(go)


@outbox_app.command("relay", epilog="Example: dialer outbox relay --once")
def outbox_relay(
    once: Annotated[bool, typer.Option(help="publish what is due, then exit")] = False,
) -> None:
    """Publish outbox rows (`dialer worker` does this too; this is for operators)."""
    from dialer.dispatch import outbox
    from dialer.dispatch.runtime import build_queue

    settings = Settings()

    async def go() -> int:
        async with database(settings) as maker:
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

    published = run(go)
    if once:
        console.print(f"published {published} jobs")


# --- dead letters ---------------------------------------------------------------------------
@dead_app.command("list", epilog="Example: dialer dead-letters list --limit 20")
def dead_letters_list(
    limit: Annotated[int, typer.Option(min=1, help="how many to show, oldest first")] = 100,
) -> None:
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
    for row in run(go):
        table.add_row(*row)
    console.print(table)


@dead_app.command(
    "replay",
    epilog="Examples: dialer dead-letters replay ID1 ID2; dialer dead-letters replay --all",
)
def dead_letters_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="the attempt ids to replay")] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="replay every dead letter (asks first without --yes)")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="do not ask before replaying them all")
    ] = False,
) -> None:
    """Move dead letters back to the work queue (a worker still acts at most once).
    Name the ids, or say --all; with no ids and no --all it asks (or refuses when it
    cannot ask)."""
    if ids and replay_all:
        fail("name ids or say --all, not both")
    if not ids and not replay_all:
        if not sys.stdin.isatty():
            fail("no ids given", hint="name the attempt ids, or say --all to replay every one")
        replay_all = True
    if replay_all and not yes and not typer.confirm("replay every dead letter?", err=True):
        fail("nothing replayed")

    async def go() -> int:
        async with _operator_queue(Settings()) as queue:
            return await queue.replay_dead_letters(ids or None)

    console.print(f"replayed {run(go)} dead letters")
