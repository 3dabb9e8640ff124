"""`dialer export`: attempts with their outcomes and the numbers called, as CSV or JSON
lines, to standard output or a file, in constant memory (`dialer.services.attempts`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer

from dialer.cli.common import checked, database, err, fail, run
from dialer.core.settings import Settings
from dialer.domain.attempts import AttemptState
from dialer.schemas.attempts import AttemptFilter, ExportFormat
from strategy.model import Channel, Result

_OPTIONS = {name: f"--{name}" for name in AttemptFilter.model_fields}


def register(app: typer.Typer) -> None:
    app.command(
        "export",
        epilog="Examples: dialer export --since 2026-12-01T00:00:00+08:00 > morning.csv;"
        " dialer export --format jsonl --outcome promise_to_pay --output promises.jsonl;"
        " dialer export --campaign 6f1c... --state failed",
    )(export)


def export(
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="csv (a header line first) or jsonl")
    ] = ExportFormat.CSV,
    output: Annotated[
        Path | None,
        typer.Option(help="write to this file (replaced once complete) instead of standard output"),
    ] = None,
    campaign: Annotated[str | None, typer.Option(help="only this campaign's (its id)")] = None,
    case: Annotated[str | None, typer.Option(help="only this case's (its id)")] = None,
    portfolio: Annotated[str | None, typer.Option(help="only this portfolio's")] = None,
    channel: Annotated[Channel | None, typer.Option(help="voice, sms or email")] = None,
    state: Annotated[AttemptState | None, typer.Option(help="e.g. completed, failed")] = None,
    outcome: Annotated[
        Result | None, typer.Option(help="the result, e.g. promise_to_pay, no_answer")
    ] = None,
    since: Annotated[str | None, typer.Option(help="at or after, RFC 3339 with an offset")] = None,
    until: Annotated[str | None, typer.Option(help="before, RFC 3339 with an offset")] = None,
) -> None:
    """Export attempts by instant, with their outcome (result, promise, callback) and
    the number or address contacted. The file holds phone numbers: keep it where the
    book is kept."""
    from dialer.services.attempts import export_attempts

    settings = Settings()
    given = {
        "campaign": campaign,
        "case": case,
        "portfolio": portfolio,
        "channel": channel,
        "state": state,
        "outcome": outcome,
        "since": since,
        "until": until,
    }
    f = checked(AttemptFilter, given, _OPTIONS)
    # A file is written whole or not at all: a partial copy beside it, renamed at the end.
    partial = output.with_name(f".{output.name}.partial") if output else None
    try:
        sink: TextIO = partial.open("w", encoding="utf-8", newline="") if partial else sys.stdout
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}", hint="is the folder there and writable?")

    async def go() -> None:
        async with database(settings) as maker:
            async for chunk in export_attempts(maker, f, fmt):
                sink.write(chunk)
        sink.flush()

    done = False
    try:
        run(go, settings=settings)
        done = True
    finally:
        if partial is not None and output is not None:
            sink.close()
            if done:
                partial.replace(output)
            else:
                partial.unlink(missing_ok=True)
    if output:
        err.print(f"exported to {output}")
