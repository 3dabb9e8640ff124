"""`dialer campaign agents`: a supervisor's assignment of agents to a campaign from the
shell, shown back, refused in one line for a name no agent key holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from dialer.cli.main import app


def test_campaign_agents_are_assigned_listed_and_cleared(env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    for name in ("agent-7", "agent-9"):
        made = runner.invoke(app, ["keys", "create", "--role", "agent", "--name", name])
        assert made.exit_code == 0, made.output
    made = runner.invoke(
        app,
        ["portfolio", "create", "cn", "--profile", "cn-consumer", "--country", "CN",
         "--strategy-preset", "consumer-loan"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    created = runner.invoke(
        app,
        ["campaign", "create", "desk", "--portfolio", "cn", "--window", "09:00-11:30",
         "--mode", "preview"],
    )  # fmt: skip
    cid = created.stdout.strip().splitlines()[-1]
    shown = runner.invoke(app, ["campaign", "agents", cid])
    assert shown.exit_code == 0 and "none assigned" in shown.output, shown.output
    bad = runner.invoke(app, ["campaign", "agents", cid, "--set", "agent-7,nobody"])
    assert bad.exit_code == 2 and "nobody" in bad.output, bad.output
    done = runner.invoke(app, ["campaign", "agents", cid, "--set", "agent-9, agent-7"])
    assert done.exit_code == 0, done.output
    assert done.stdout.split() == ["agent-7", "agent-9"]
    with sqlite3.connect(env) as db:
        rows = db.execute(
            "SELECT a.name FROM agent_campaigns AS ac JOIN agents AS a ON a.id = ac.agent_id"
            " ORDER BY a.name"
        ).fetchall()
        audited = db.execute(
            "SELECT actor FROM audit_log WHERE action = 'campaign.agents'"
        ).fetchall()
    assert rows == [("agent-7",), ("agent-9",)] and audited == [("cli",)]
    cleared = runner.invoke(app, ["campaign", "agents", cid, "--set", ""])
    assert cleared.exit_code == 0 and "none assigned" in cleared.output, cleared.output
