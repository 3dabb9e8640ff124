"""`make demo`'s morning end to end on the embedded default (a smaller portfolio): the
service over HTTP, the worker's loops, the simulator's signed callbacks. Every callback is
accepted, every attempt ends final, and the summary says what the database says."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from rich.console import Console
from sqlalchemy import func, select

from adapters.simulator import SimulatedTelephony
from adapters.unconfigured import UnconfiguredTelephony
from demo.morning import (
    DemoService,
    MorningReport,
    create_campaigns,
    demo_service,
    outcome_of,
    run_morning,
    seed,
)
from demo.render import render_morning
from demo.rule_words import plain_words
from dialer.core.errors import ConfigurationError
from dialer.core.settings import Settings
from dialer.db.models import AttemptRow, CampaignRow, TaskRow, WebhookEventRow
from dialer.dispatch.runtime import build_telephony
from dialer.domain.attempts import FINAL_STATES


async def test_a_demo_morning_ends_final_and_its_summary_matches_the_database(
    tmp_path: Path,
) -> None:
    async with demo_service(tmp_path / "demo.sqlite", seed=3) as service:
        seeded = await seed(service.maker, service.settings, service.clock(), cases_per_portfolio=6)
        assert seeded.cases == 18 and seeded.rejected == 0
        schedule = await create_campaigns(service.maker, service.clock())
        report = await run_morning(service, schedule, limit_seconds=120)
        stats = service.telephony.stats

        # The simulator's callbacks arrived signed and were accepted.
        assert sum(stats.posted.values()) > 0
        assert stats.rejected == [] and stats.errors == []
        assert set(stats.answered) <= {200, 204}
        assert not report.timed_out and report.stragglers == []

        async with service.maker() as session:
            attempts = list(await session.scalars(select(AttemptRow)))
            events = list(await session.scalars(select(WebhookEventRow)))
            tasks = await session.scalar(  # the morning's: not the seeding refresh's
                select(func.count())
                .select_from(TaskRow)
                .where(TaskRow.created_at >= report.started)
            )
        assert attempts and all(a.state in {s.value for s in FINAL_STATES} for a in attempts)
        assert report.not_final == 0
        assert events and all(e.status != "unmatched" for e in events)
        # the simulator dialled: calls reached a result through the callbacks
        assert any(a.channel == "voice" and a.result != "pending" for a in attempts)

        # The summary is the database's count.
        assert report.attempts == Counter(
            (a.channel, outcome_of(a.state, a.result)) for a in attempts
        )
        assert report.promises == sum(a.result == "promise_to_pay" for a in attempts)
        assert sum(report.tasks.values()) == tasks
        # ... and the API's: refusals by rule and completed outcomes per campaign.
        headers = {"Authorization": f"Bearer {seeded.supervisor_key}"}
        refusals: Counter[str] = Counter()
        completed: Counter[str] = Counter()
        async with httpx.AsyncClient(base_url=service.base_url, headers=headers) as client:
            for item in schedule:
                r = await client.get(f"/v1/campaigns/{item.campaign_id}/progress")
                assert r.status_code == 200, r.text
                refusals.update(r.json()["refused_by_rule"])
                completed.update(r.json()["completed_by_outcome"])
        assert report.refusals == refusals
        assert +completed == Counter(a.result for a in attempts if a.state == "completed")
        await _the_tables_reconcile(service, report, attempts)


async def _the_tables_reconcile(
    service: DemoService, report: MorningReport, attempts: list[AttemptRow]
) -> None:
    """The refusals table's dispatch column counts the attempts table's `refused` rows by
    rule (an attempt under each of its rules); its planning column counts cases that were
    never planned, which the attempts table cannot have; every rule is said in words."""
    refused = [a for a in attempts if a.state == "refused"]
    by_rule: Counter[str] = Counter()
    for a in refused:
        by_rule.update({r["rule"] for r in (a.refusal or {}).get("reasons", [])})
    assert report.dispatch_refusals == by_rule
    assert sum(n for (_, out), n in report.attempts.items() if out == "refused") == len(refused)
    assert all(n <= len(refused) for n in by_rule.values())
    assert not refused or by_rule, "a refused attempt names its rule"
    async with service.maker() as session:
        rows = await session.scalars(select(CampaignRow))
        planning: Counter[str] = Counter()
        for row in rows:
            planning.update(row.refused_by_rule or {})
    assert report.planning_refusals == planning
    assert report.refusals == planning + by_rule
    console = Console(record=True, width=220)
    console.print(render_morning(report))
    text = console.export_text()
    footer = next(line for line in text.splitlines() if "attempts refused at dispatch" in line)
    assert footer.rstrip(" │").endswith(str(len(refused))), footer
    for rule in report.refusals:
        words = plain_words(rule)
        assert words, f"no plain words for {rule}"
        assert words[:40] in text.replace("\n", " ") or words[:20] in text, (rule, words)


def test_settings_choose_the_simulator_which_needs_a_key_to_sign_with() -> None:
    signing = Settings(telephony="simulator", twilio_auth_token=SecretStr("t" * 32))
    assert isinstance(build_telephony(signing), SimulatedTelephony)
    with pytest.raises(ConfigurationError, match="DIALER_TWILIO_AUTH_TOKEN"):
        build_telephony(Settings(telephony="simulator"))
    # auto, no Twilio: dial nobody (and end every attempt as not_sent)
    assert isinstance(build_telephony(Settings()), UnconfiguredTelephony)


async def _summary(database: Path, seed_value: int) -> str:
    async with demo_service(database, seed=seed_value) as service:
        await seed(service.maker, service.settings, service.clock(), cases_per_portfolio=8)
        schedule = await create_campaigns(service.maker, service.clock())
        report = await run_morning(service, schedule, limit_seconds=240)
        assert not report.timed_out and report.not_final == 0
    console = Console(record=True, width=220)
    console.print(render_morning(report))
    return console.export_text()


async def test_the_same_seed_plays_the_same_morning(tmp_path: Path) -> None:
    """Two runs of one seed print the same summary, to the last count (simulated time
    moves only when told; one job at a time after the last one's callbacks)."""
    first = await _summary(tmp_path / "a.sqlite", 11)
    second = await _summary(tmp_path / "b.sqlite", 11)
    assert "attempts by channel and outcome" in first
    assert first == second
