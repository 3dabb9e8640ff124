"""`dialer campaign ...`, `dialer outbox relay`, `dialer dead-letters ...` on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dialer.cli.main import app


def test_campaign_lifecycle_on_the_command_line(env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    made = runner.invoke(
        app,
        ["portfolio", "create", "cn", "--profile", "cn-consumer", "--country", "CN",
         "--strategy-preset", "consumer-loan"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    bad = runner.invoke(
        app, ["campaign", "create", "m", "--portfolio", "cn", "--window", "11:00-09:00"]
    )
    assert bad.exit_code == 2 and "window" in bad.output
    created = runner.invoke(
        app,
        ["campaign", "create", "morning", "--portfolio", "cn", "--window", "09:00-11:30",
         "--channels", "voice,sms", "--cps", "5", "--max-in-progress", "0"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    cid = created.stdout.strip().splitlines()[-1]
    for verb, status in (("start", "running"), ("pause", "paused"), ("resume", "running")):
        r = runner.invoke(app, ["campaign", verb, cid])
        assert r.exit_code == 0 and status in r.stdout, r.output
    assert runner.invoke(app, ["campaign", "start", cid]).exit_code == 2  # already running
    status = runner.invoke(app, ["campaign", "status", cid, "--json"])
    assert status.exit_code == 0, status.output
    progress = json.loads(status.stdout)
    assert progress["status"] == "running" and progress["planned"] == 0
    listed = runner.invoke(app, ["campaign", "list"])
    assert "morning" in listed.stdout
    assert runner.invoke(app, ["campaign", "cancel", cid]).exit_code == 0
    relay = runner.invoke(app, ["outbox", "relay", "--once"])
    assert relay.exit_code == 0 and "published 0 jobs" in relay.stdout
    assert runner.invoke(app, ["dead-letters", "list"]).exit_code == 0
    assert "replayed 0" in runner.invoke(app, ["dead-letters", "replay", "--all", "--yes"]).stdout
