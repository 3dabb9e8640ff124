"""The `dialer` command: migrate, keys, portfolios, import, export, serve, audit, demo.

Conventions: every option says what it takes, every command shows examples in its
`--help`, input is checked with the API's own schemas before anything is written, and
errors are one line with a hint; exit codes are `dialer.cli.common`'s."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

import typer

from dialer.cli import dispatch as cli_dispatch
from dialer.cli import export as cli_export
from dialer.cli.common import (
    EXIT_CODES,
    OPERATIONAL,
    USAGE,
    checked,
    console,
    database,
    err,
    run,
    warn_loudly,
)
from dialer.core.auth import Role
from dialer.core.clock import system_clock
from dialer.core.settings import Settings
from dialer.db.engine import build_engine
from dialer.db.migrate import current_revisions, upgrade_to_head
from dialer.schemas.admin import KeyIn, PortfolioIn

app = typer.Typer(
    help="collections-dialer: cases, strategies, decisions, campaigns. The database is"
    " DIALER_DATABASE_URL (`dialer settings` lists every setting).",
    epilog=f"{EXIT_CODES}\n\nExamples: dialer migrate; dialer keys create --role admin;"
    " dialer campaign create morning --portfolio cn-loans --window 09:00-11:30",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
portfolio_app = typer.Typer(help="Portfolios and their guardrail profile (admin).")
app.add_typer(keys_app, name="keys")
app.add_typer(portfolio_app, name="portfolio")
cli_dispatch.register(app)  # campaign, worker, outbox, dead-letters
cli_export.register(app)  # export


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"dialer {version('collections-dialer')}")
        except PackageNotFoundError:
            typer.echo("dialer (not installed as a package)")
        raise typer.Exit()


@app.callback()
def main_options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """collections-dialer: cases, strategies, decisions, campaigns."""


@app.command(epilog="Example: DIALER_DATABASE_URL=sqlite+aiosqlite:///dialer.db dialer migrate")
def migrate() -> None:
    """Bring the database (DIALER_DATABASE_URL) to the latest schema and say what moved.
    Creates no data; running it again changes nothing."""
    settings = Settings()

    async def go() -> tuple[set[str], set[str]]:
        engine = build_engine(settings)
        try:
            before = await current_revisions(engine)
            await upgrade_to_head(engine)
            return before, await current_revisions(engine)
        finally:
            await engine.dispose()

    before, after = run(go, settings=settings)
    if before == after:
        console.print(f"database schema is up to date (revision {', '.join(sorted(after))})")
    else:
        start = ", ".join(sorted(before)) or "an empty database"
        console.print(f"migrated the database from {start} to revision {', '.join(sorted(after))}")


@keys_app.command("create", epilog="Example: dialer keys create --role agent --name agent-7")
def keys_create(
    role: Annotated[Role, typer.Option(help="admin, supervisor, approver, agent or service")],
    name: Annotated[
        str | None, typer.Option(help="who holds the key (an agent's cases are assigned to it)")
    ] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from dialer.services import keys

    settings = Settings()
    body = checked(KeyIn, {"role": role, "name": name or role.value}, {"name": "--name"})

    async def go() -> str:
        async with database(settings) as maker, maker() as session:
            _, plaintext = await keys.create_key(
                session, role=body.role, name=body.name, actor="cli", now=system_clock()
            )
        return plaintext

    plaintext = run(go, settings=settings)
    err.print(f"created a key with role {role.value}; it is shown once, store it now:")
    typer.echo(plaintext)


@portfolio_app.command(
    "create",
    epilog="Example: dialer portfolio create cn-loans --profile cn-consumer --country CN"
    " --timezone Asia/Shanghai --strategy-preset consumer-loan",
)
def portfolio_create(
    name: Annotated[str, typer.Argument(help="lower-case letters, digits, - and _")],
    profile: Annotated[
        str, typer.Option(help="guardrail profile: cn-consumer, us-consumer or commercial")
    ],
    country: Annotated[str, typer.Option(help="default phone region, ISO alpha-2")] = "US",
    timezone: Annotated[str, typer.Option(help="the portfolio's IANA zone")] = "UTC",
    strategy_preset: Annotated[
        str | None, typer.Option(help="activate a shipped preset, e.g. consumer-loan")
    ] = None,
) -> None:
    """Create a portfolio with its guardrail profile, optionally activating a preset."""
    from dialer.services import portfolios, strategies

    settings = Settings()
    body = checked(
        PortfolioIn,
        {"name": name, "profile": profile, "country": country.upper(), "timezone": timezone},
        {"name": "NAME", "profile": "--profile", "country": "--country", "timezone": "--timezone"},
    )

    async def go() -> None:
        async with database(settings) as maker, maker() as session:
            now = system_clock()
            await portfolios.create_portfolio(session, **body.model_dump(), actor="cli", now=now)
            if strategy_preset:
                row = await strategies.create_from_preset(
                    session, portfolio=name, preset=strategy_preset, actor="cli", now=now
                )
                await strategies.activate(session, row.id, actor="cli", now=now)

    run(go, settings=settings)
    console.print(f"portfolio {name} created with profile {profile}")


@app.command(
    "import",
    epilog="Example: dialer import examples/portfolio.csv --portfolio cn-loans."
    " Exits 2 when any line was rejected (the others are imported).",
)
def import_file(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="a .csv or .jsonl file of cases"
        ),
    ],
    portfolio: Annotated[
        str | None, typer.Option(help="portfolio for rows that do not name one")
    ] = None,
) -> None:
    """Import cases from CSV (one row per contact point) or JSON lines (.jsonl)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from dialer.services import imports

    settings = Settings()
    size = file.stat().st_size

    async def go() -> imports.ImportReport:
        fmt = imports.format_for(file.name, None)
        async with database(settings) as maker:
            with Progress(
                TextColumn("importing {task.fields[name]}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeRemainingColumn(),
                console=err,
            ) as progress:
                task = progress.add_task("import", total=size, name=file.name)
                with file.open("rb") as fh:
                    async with maker() as session:
                        return await imports.import_stream(
                            session,
                            imports.read_lines(fh, lambda n: progress.update(task, completed=n)),
                            fmt=fmt,
                            default_portfolio=portfolio,
                            settings=settings,
                            actor="cli",
                            now=system_clock(),
                        )

    report = run(go, settings=settings)
    console.print(
        f"{report.cases_created} created, {report.cases_updated} updated,"
        f" {len(report.errors)} rejected ({report.lines} lines)"
    )
    for e in report.errors[:50]:
        err.print(f"  line {e.line}: {e.field + ': ' if e.field else ''}{e.reason}")
    if len(report.errors) > 50:
        err.print(f"  ... and {len(report.errors) - 50} more")
    for k in report.kept[:50]:
        err.print(f"  line {k.line} ({k.external_ref}): {k.message}")
    if len(report.kept) > 50:
        err.print(f"  ... and {len(report.kept) - 50} more protective facts kept")
    if report.errors:
        raise typer.Exit(USAGE)


@app.command(epilog="Example: dialer serve --host 0.0.0.0 --port 8000")
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (DIALER_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (DIALER_PORT)")] = None,
) -> None:
    """Run the HTTP API (refuses to start on an out-of-date schema)."""
    import uvicorn

    from dialer.api.app import create_app
    from dialer.dispatch.runtime import freeze_start_up_objects
    from dialer.observability import configure_logging

    settings = Settings()
    configure_logging(settings)  # JSON lines on stderr, phone numbers and secrets masked
    _say_how_it_dials(settings)
    config = uvicorn.Config(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,  # uvicorn's loggers propagate to the masked root handler
        access_log=settings.access_log,
    )
    config.load()  # the server's own modules (loop, HTTP protocol) imported now
    freeze_start_up_objects()  # as the worker does: full collections skip start-up objects
    uvicorn.Server(config).run()


def _say_how_it_dials(settings: Settings) -> None:
    """Refuse, in one line, settings whose telephony cannot work; say loudly when the
    service dials nobody (the voicemail redirect is this process's; workers dial)."""
    from dialer.core.errors import DialerError
    from dialer.dispatch.runtime import telephony_banner

    try:
        banner = telephony_banner(settings)
    except DialerError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if banner:
        warn_loudly(banner)


@app.command(
    "audit",
    epilog="Example: dialer audit --since 2026-12-01T00:00:00+08:00 --portfolio cn-loans --json",
)
def audit_command(
    since: Annotated[
        str | None, typer.Option(help="only attempts reserved at or after (ISO 8601; UTC if naive)")
    ] = None,
    portfolio: Annotated[str | None, typer.Option(help="only this portfolio's attempts")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the whole report as JSON")] = False,
    show: Annotated[int, typer.Option(help="violations to list")] = 20,
) -> None:
    """Replay every dispatched attempt against the strategy version and guardrail profile
    that allowed it; exit 1 when any violation is found, 2 on an error (an unknown
    portfolio, a bad --since)."""
    import json

    from dialer.services.audit import AuditReport, audit

    settings = Settings()
    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 instant: {since!r}", param_hint="--since") from (
            exc
        )
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)

    async def go() -> AuditReport:
        async with database(settings) as maker:
            return await audit(maker, since=start, portfolio=portfolio)

    # An error (an unknown portfolio) exits 2: exit 1 means "violations found".
    report = run(go, settings=settings)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "attempts_checked": report.attempts_checked,
                    "tasks_checked": report.tasks_checked,
                    "ok": report.ok(),
                    "by_rule": dict(report.by_rule),
                    "violations": [
                        {**asdict(v), "attempt_id": str(v.attempt_id), "case_id": str(v.case_id)}
                        for v in report.violations
                    ],
                },
                indent=2,
            )
        )
    else:
        console.print(
            f"{report.attempts_checked} attempts and {report.tasks_checked} approval tasks"
            f" checked, {sum(report.by_rule.values())} violations"
        )
        for rule, n in sorted(report.by_rule.items()):
            console.print(f"  {rule}: {n}")
        for v in report.violations[:show]:
            console.print(f"  {v.rule} attempt {v.attempt_id} case {v.case_id}: {v.detail}")
    if not report.ok():
        raise typer.Exit(OPERATIONAL)


@app.command("settings", epilog="Example: dialer settings > settings.md")
def settings_table() -> None:
    """Print the configuration table (every DIALER_* variable) as Markdown."""
    from dialer.observability.settings_doc import settings_table as table

    typer.echo(table())


@app.command(
    epilog="Examples: dialer demo; dialer demo --decisions; dialer demo --seed 11;"
    " dialer demo --agents 8"
)
def demo(
    decisions: Annotated[
        bool, typer.Option("--decisions", help="only print the engine's decisions")
    ] = False,
    database: Annotated[Path, typer.Option(help="SQLite file, recreated")] = Path("demo.sqlite"),
    seed: Annotated[int, typer.Option(help="the simulator's seed")] = 7,
    agents: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="play a simulated shift of this many collectors (progressive and predictive)",
        ),
    ] = None,
    hours: Annotated[
        float, typer.Option(min=0.5, max=24.0, help="the shift's length, with --agents")
    ] = 4.0,
) -> None:
    """Run one simulated morning of the whole service on a fresh SQLite file and leave it
    behind to explore; with --decisions, show the engine deciding realistic cases; with
    --agents N, play a shift of N collectors on the simulated floor with the service's pacer."""
    from demo.run import run_demo, run_morning_demo

    if decisions:
        run_demo(console)
        return
    if agents is not None:
        from demo.shift import run_shift_demo

        run_shift_demo(console, agents, hours, seed)
        return
    report = run_morning_demo(console, database, seed)
    if report.timed_out or report.not_final:
        raise typer.Exit(1)


def main() -> None:
    app()
