"""The `dialer` command on a SQLite file: migrate, keys, portfolio, import, demo."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dialer.cli.main import app

EXAMPLE = Path(__file__).parents[3] / "examples" / "portfolio.csv"


def test_commands_refuse_an_unmigrated_database_naming_the_fix(env: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--role", "admin"])
    assert result.exit_code == 2
    assert "dialer migrate" in result.output


def test_migrate_keys_portfolio_and_import(env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    assert runner.invoke(app, ["migrate"]).exit_code == 0  # idempotent
    keys = runner.invoke(app, ["keys", "create", "--role", "admin", "--name", "root"])
    assert keys.exit_code == 0, keys.output
    assert keys.stdout.strip().splitlines()[-1].startswith("dk_")
    for name, profile, country, preset in (
        ("cn-loans", "cn-consumer", "CN", "consumer-loan"),
        ("us-loans", "us-consumer", "US", None),
        ("b2b", "commercial", "CN", "b2b-receivables"),
    ):
        args = ["portfolio", "create", name, "--profile", profile, "--country", country]
        args += ["--strategy-preset", preset] if preset else []
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    first = runner.invoke(app, ["import", str(EXAMPLE)])
    assert first.exit_code == 0, first.output
    assert "200 created, 0 updated, 0 rejected" in first.stdout
    again = runner.invoke(app, ["import", str(EXAMPLE)])
    assert "0 created, 200 updated" in again.stdout


def test_import_reports_bad_lines_and_exits_nonzero(env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["migrate"])
    runner.invoke(app, ["portfolio", "create", "p", "--profile", "cn-consumer", "--country", "CN"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"external_ref": "x"}\n')
    result = runner.invoke(app, ["import", str(bad), "--portfolio", "p"])
    assert result.exit_code == 2  # an input error: the rejected lines are named
    assert "line 1" in result.output


def test_demo_prints_decisions() -> None:
    result = CliRunner().invoke(app, ["demo", "--decisions"])
    assert result.exit_code == 0, result.output
    assert "window.local_time" in result.output
    assert "account_lock (needs approval)" in result.output
