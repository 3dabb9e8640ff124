"""What every `dialer` command shares: the exit codes, one-line errors with a hint, the
database a command opens, and input checked at the door with the API's own schemas.

Exit codes (said in `dialer --help`): 0 done; 1 an operational error (the database or
the queue unreachable, something failed on the way) or a check that failed; 2 a usage or
input error (a bad option or value, an unknown name, a rejected line)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.errors import QueueError
from dialer.core.errors import DialerError
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.errors import database_unavailable
from dialer.db.migrate import schema_is_current

OK, OPERATIONAL, USAGE = 0, 1, 2
EXIT_CODES = (
    "Exit codes: 0 done; 1 an operational error (the database or the queue unreachable)"
    " or a failed check (audit violations); 2 a usage or input error (a bad option or"
    " value, an unknown name, rejected import lines)."
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def fail(message: str, code: int = USAGE, hint: str | None = None) -> NoReturn:
    """Print `error: message` (and `hint: ...`) on stderr, one line each, and exit."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    if hint:
        err.print(f"[dim]hint:[/dim] {escape(hint)}", soft_wrap=True)
    raise typer.Exit(code)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def database_label(settings: Settings) -> str:
    """The database URL without its password, for messages."""
    try:
        return make_url(settings.database_url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "(an unreadable DIALER_DATABASE_URL)"


def run(factory: Callable[[], Coroutine[Any, Any, T]], *, settings: Settings | None = None) -> T:
    """Run a command's coroutine; expected failures become one line and an exit code:
    a refused input (4xx) exits 2, an unreachable database or queue exits 1."""
    try:
        return asyncio.run(factory())
    except DialerError as exc:
        detail = "; ".join(f"{f.field}: {f.reason}" for f in exc.fields)
        message = (
            exc.message if not detail or detail in exc.message else f"{exc.message} ({detail})"
        )
        fail(message, USAGE if 400 <= exc.status_code < 500 else OPERATIONAL)
    except QueueError as exc:
        fail(
            f"the queue is unreachable: {_first_line(exc)}",
            OPERATIONAL,
            "is RabbitMQ running? check DIALER_QUEUE_URL",
        )
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        if not (database_unavailable(exc) or isinstance(exc, sa_exc.OperationalError)):
            raise
        where = database_label(settings or Settings())
        fail(
            f"the database at {where} is unavailable: {_first_line(exc)}",
            OPERATIONAL,
            "is it running and reachable? check DIALER_DATABASE_URL",
        )


def checked(model: type[M], data: dict[str, Any], options: dict[str, str]) -> M:
    """`data` read by the API's schema; a refusal exits 2 naming the option (`options`
    maps a field to the option that gave it) and the reason, on one line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        parts = []
        for e in exc.errors():
            field = str(e["loc"][0]) if e["loc"] else ""
            where = options.get(field, field or "input")
            parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
        fail("; ".join(parts))
    except DialerError as exc:
        fail(exc.message)


@contextlib.asynccontextmanager
async def database(
    settings: Settings, *, pool_size: int | None = None
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session maker on the database at head, or exit: 2 when it needs `dialer
    migrate`; 1 (via `run`) when it cannot be reached."""
    # A worker sizes its pool to its concurrency and skips the per-checkout ping: a job
    # that meets a dropped connection fails, is redelivered and finds a fresh connection.
    engine = build_engine(settings, pool_size=pool_size, pre_ping=pool_size is None)
    try:
        current, _, _ = await schema_is_current(engine)
        if not current:
            fail("the database schema is out of date", USAGE, "run `dialer migrate` first")
        yield build_sessionmaker(engine)
    finally:
        await engine.dispose()


def warn_loudly(message: str) -> None:
    """A warning an operator must not miss: a JSON log line (what a log pipeline reads),
    and in red on a terminal (a plain line would break the JSON stream of a service)."""
    logging.getLogger("dialer.telephony").warning(message)
    if sys.stderr.isatty():
        err.print(f"[bold red]{escape(message)}[/bold red]")
