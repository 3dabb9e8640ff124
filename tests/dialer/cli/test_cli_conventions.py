"""The CLI's conventions: help and examples for every command and option, `--version`,
input checked at the door (one line naming the option or clause, exit 2), operational
errors in one line with a hint (exit 1), a confirmation or `--all` for bulk replays,
`migrate` saying what it did, and `dialer export`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from dialer.cli.main import app

runner = CliRunner()


@pytest.fixture
def book(env: Path) -> Path:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    made = runner.invoke(
        app,
        ["portfolio", "create", "cn", "--profile", "cn-consumer", "--country", "CN",
         "--timezone", "Asia/Shanghai", "--strategy-preset", "consumer-loan"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    return env


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf command under `group` (Typer's own click types: read by duck typing)."""
    found: list[tuple[str, Any]] = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _commands(command, f"{prefix}{name} ")
        else:
            found.append((f"{prefix}{name}", command))
    return found


def test_every_command_has_help_and_an_example_and_every_option_says_what_it_takes() -> None:
    commands = _commands(get_command(app))
    assert len(commands) >= 18
    for name, command in commands:
        assert command.help, f"{name}: no help"
        assert command.epilog and "dialer " in command.epilog, f"{name}: no example"
        for param in command.params:
            if param.name == "help":
                continue
            assert getattr(param, "help", None), f"{name}: {param.name} has no help"


def test_help_documents_the_exit_codes_and_version_prints() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "0 done; 1 an operational error" in text and "2 a usage or input error" in text
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("dialer ")


def test_migrate_on_an_empty_database_says_it_migrated(env: Path) -> None:
    first = runner.invoke(app, ["migrate"])
    assert first.exit_code == 0
    assert "migrated the database from an empty database to revision" in first.stdout
    again = runner.invoke(app, ["migrate"])
    assert "up to date" in again.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--window", "22:30-23:30"], "cn.window"),  # outside 08:00-22:00
        (["--window", "9am"], "--window: a window is 'HH:MM-HH:MM'"),
        (["--window", "09:00-11:30", "--tiers", "early,vip"], "unknown tier vip"),
        (["--window", "09:00-11:30", "--cps", "0"], "--cps:"),
        (["--window", "09:00-11:30", "--channels", "fax"], "--channels:"),
    ],
)
def test_campaign_create_refuses_bad_input_in_one_line(
    book: Path, args: list[str], says: str
) -> None:
    result = runner.invoke(app, ["campaign", "create", "m", "--portfolio", "cn", *args])
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_a_zone_that_does_not_exist_is_refused(env: Path) -> None:
    runner.invoke(app, ["migrate"])
    result = runner.invoke(
        app, ["portfolio", "create", "p", "--profile", "cn-consumer", "--timezone", "Mars/Base"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --timezone: unknown time zone 'Mars/Base'"


def test_an_unknown_status_is_refused(book: Path) -> None:
    result = runner.invoke(app, ["campaign", "list", "--status", "runing"])
    assert result.exit_code == 2 and "runing" in result.output


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://u:secret@127.0.0.1:1/x",  # nothing listens on port 1
        "sqlite+aiosqlite:////no/such/folder/x.db",
    ],
)
def test_an_unreachable_database_is_one_line_and_a_hint(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("DIALER_DATABASE_URL", url)
    for args in (["campaign", "list"], ["migrate"], ["keys", "create", "--role", "admin"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("error: the database at"), lines
        assert lines[1].startswith("hint:") and "secret" not in result.stderr


def test_replaying_every_dead_letter_needs_all_or_a_yes(book: Path) -> None:
    refused = runner.invoke(app, ["dead-letters", "replay"])  # no terminal to ask on
    assert refused.exit_code == 2 and "--all" in refused.stderr
    declined = runner.invoke(app, ["dead-letters", "replay", "--all"], input="n\n")
    assert declined.exit_code == 2 and "nothing replayed" in declined.stderr
    confirmed = runner.invoke(app, ["dead-letters", "replay", "--all"], input="y\n")
    assert confirmed.exit_code == 0 and "replayed 0" in confirmed.stdout


def _promise(book: Path) -> None:
    """A case with an agent's promise, through the services the API uses."""
    import asyncio
    from datetime import UTC, datetime

    from dialer.core.settings import Settings
    from dialer.db.engine import build_engine, build_sessionmaker
    from dialer.schemas.cases import CaseIn
    from dialer.schemas.outcomes import OutcomeIn
    from dialer.services import cases, outcomes
    from tests.dialer.factories import cn_case

    async def go() -> None:
        engine = build_engine(Settings())
        maker = build_sessionmaker(engine)
        now = datetime(2026, 12, 1, 2, tzinfo=UTC)
        async with maker() as session:
            row = await cases.create_case(
                session, CaseIn.model_validate(cn_case(portfolio="cn")), actor="t", now=now
            )
            point = row.parties[0].contact_points[0].id
            body = OutcomeIn(contact_point_id=point, channel="voice", result="promise_to_pay",
                             promise_amount="300", promise_date="2026-12-05")  # type: ignore[arg-type]  # fmt: skip
            await outcomes.record_outcome(session, row.id, body, actor="t", now=now)
        await engine.dispose()

    asyncio.run(go())


def test_export_writes_csv_to_stdout_and_json_lines_to_a_file(book: Path, tmp_path: Path) -> None:
    _promise(book)
    out = runner.invoke(app, ["export", "--outcome", "promise_to_pay"])
    assert out.exit_code == 0, out.output
    [row] = list(csv.DictReader(io.StringIO(out.stdout)))
    assert row["external_ref"] == "CN-1" and row["promise_date"] == "2026-12-05"
    assert row["contact_value"] == "+8613800138000"
    target = tmp_path / "out.jsonl"
    done = runner.invoke(app, ["export", "--format", "jsonl", "--output", str(target)])
    assert done.exit_code == 0, done.output
    [line] = [json.loads(x) for x in target.read_text().splitlines()]
    assert line["result"] == "promise_to_pay"
    nothing = runner.invoke(app, ["export", "--outcome", "no_answer"])
    assert nothing.stdout.splitlines() == [nothing.stdout.splitlines()[0]]  # the header only


def test_an_export_cut_short_leaves_the_file_as_it_was(
    book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database goes away after the first batch: the command fails (exit 1, one line)
    # and neither a half file nor a half-overwritten one is left to pass for complete.
    from sqlalchemy.exc import OperationalError

    from dialer.services import attempts

    async def cut_short(*args: object, **kwargs: object) -> AsyncIterator[str]:
        yield "id,case_id\n"
        raise OperationalError("SELECT", {}, ConnectionRefusedError("gone"))

    target = tmp_path / "out.csv"
    target.write_text("yesterday's export\n")
    monkeypatch.setattr(attempts, "export_attempts", cut_short)
    result = runner.invoke(app, ["export", "--output", str(target)])
    assert result.exit_code == 1, result.output
    assert "unavailable" in result.output
    assert target.read_text() == "yesterday's export\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "yesterday"], "--since:"),
        (["--format", "xlsx"], "xlsx"),
        (["--state", "lost"], "lost"),
        (["--campaign", "nope"], "--campaign:"),
    ],
)
def test_export_refuses_bad_filters(book: Path, args: list[str], says: str) -> None:
    result = runner.invoke(app, ["export", *args])
    assert result.exit_code == 2 and says in result.output, result.output
