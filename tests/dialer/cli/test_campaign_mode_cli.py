"""`dialer campaign create --mode`: the mode and wrap-up limit kept; an agent mode with
texts refused in one line naming the option."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from typer.testing import CliRunner

from dialer.cli.main import app


def test_campaign_create_with_a_mode(env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    made = runner.invoke(
        app,
        ["portfolio", "create", "cn", "--profile", "cn-consumer", "--country", "CN",
         "--strategy-preset", "consumer-loan"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    base = ["campaign", "create", "desk", "--portfolio", "cn", "--window", "09:00-11:30"]
    bad = runner.invoke(app, [*base, "--mode", "progressive", "--channels", "voice,sms"])
    assert bad.exit_code == 2 and "channels" in bad.output, bad.output
    unknown = runner.invoke(app, [*base, "--mode", "robot"])
    assert unknown.exit_code == 2 and "--mode" in unknown.output, unknown.output
    created = runner.invoke(app, [*base, "--mode", "predictive", "--wrap-up-limit", "60"])
    assert created.exit_code == 0, created.output
    cid = created.stdout.strip().splitlines()[-1]
    with sqlite3.connect(env) as db:
        rows = db.execute("SELECT id, mode, wrap_up_limit_s FROM campaigns").fetchall()
    assert [(uuid.UUID(r[0]), r[1], r[2]) for r in rows] == [(uuid.UUID(cid), "predictive", 60)]
