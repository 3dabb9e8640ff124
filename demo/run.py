"""`dialer demo`: one simulated morning of the whole service (`run_morning_demo`, the
default; see `demo.morning`), or, with `--decisions`, the strategy engine on realistic
cases from both presets at a few instants, printed as readable decisions (`run_demo`:
nothing is stored and nobody is dialled)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.rule import Rule

from demo import morning
from demo.render import render_decision, render_morning
from strategy.engine import decide
from strategy.guardrails import get_profile
from strategy.model import (
    Attempt,
    Case,
    Channel,
    ContactKind,
    ContactPoint,
    History,
    Party,
    PartyRole,
    Result,
    Stage,
    Validity,
)
from strategy.presets import load_preset


def _phone(cp_id: str, value: str, **kw: object) -> ContactPoint:
    return ContactPoint(id=cp_id, kind=ContactKind.PHONE, value=value, **kw)  # type: ignore[arg-type]


def consumer_cases() -> list[tuple[str, Case, History]]:
    debtor = Party(
        id="debtor",
        role=PartyRole.DEBTOR,
        name="Wang Fang",
        timezone="Asia/Shanghai",
        contact_points=(
            _phone("m1", "+8613800138000", validity=Validity.VERIFIED),
            _phone("m2", "+8613912345678"),
        ),
    )
    colleague = Party(
        id="colleague",
        role=PartyRole.THIRD_PARTY,
        name="Li Na",
        relation="colleague",
        contact_points=(_phone("c1", "+8613700137000"),),
    )
    mid = Case(
        id="CNL-1042",
        amount=Decimal("12000.00"),
        currency="CNY",
        due_date=date(2026, 11, 20),
        parties=(debtor, colleague),
        portfolio="cn-loans",
    )
    # Late tier, debtor unreachable after six unanswered calls over three days.
    tries = tuple(
        Attempt(
            at=datetime(2026, 11, day, hour, 0, tzinfo=UTC),
            channel=Channel.VOICE,
            party_id="debtor",
            contact_point_id="m1" if hour % 2 else "m2",
            result=Result.NO_ANSWER,
        )
        for day in (28, 29, 30)
        for hour in (1, 6)
    )
    late = Case(
        id="CNL-0977",
        amount=Decimal("30500.00"),
        currency="CNY",
        due_date=date(2026, 11, 8),
        parties=(debtor, colleague),
        portfolio="cn-loans",
    )
    return [
        ("mid tier, debtor reachable", mid, History()),
        ("late tier, debtor unreachable", late, History(attempts=tries)),
    ]


def b2b_cases() -> list[tuple[str, Case, History]]:
    customer = Party(
        id="customer",
        role=PartyRole.DEBTOR,
        name="Donghai Logistics",
        timezone="Asia/Shanghai",
        contact_points=(_phone("t1", "+862155501000", validity=Validity.VERIFIED),),
    )
    finance = Party(
        id="finance",
        role=PartyRole.THIRD_PARTY,
        name="Ms. Chen",
        title="Finance Manager",
        knows_of_debt=True,
        timezone="Asia/Shanghai",
        contact_points=(
            ContactPoint(id="e1", kind=ContactKind.EMAIL, value="finance@donghai.example.cn"),
        ),
    )
    overdue = Case(
        id="AR-2026-117",
        amount=Decimal("250000.00"),
        currency="CNY",
        due_date=date(2026, 8, 20),
        stage=Stage.PAYMENT,
        stage_started_on=date(2026, 8, 1),
        parties=(customer, finance),
        portfolio="b2b",
    )
    confirming = Case(
        id="AR-2026-131",
        amount=Decimal("88000.00"),
        currency="CNY",
        due_date=date(2026, 12, 30),
        stage=Stage.BILL_CONFIRMATION,
        stage_started_on=date(2026, 11, 23),
        parties=(customer, finance),
        portfolio="b2b",
    )
    return [
        ("payment over three months late", overdue, History()),
        ("bill confirmation, second week", confirming, History()),
    ]


INSTANTS = (
    datetime(2026, 12, 1, 2, 0, tzinfo=UTC),  # Tue 10:00 Shanghai
    datetime(2026, 12, 1, 14, 30, tzinfo=UTC),  # Tue 22:30 Shanghai: outside every window
)


def run_demo(console: Console) -> None:
    for preset, profile_name, cases in (
        ("consumer-loan", "cn-consumer", consumer_cases()),
        ("b2b-receivables", "commercial", b2b_cases()),
    ):
        strategy = load_preset(preset)
        profile = get_profile(profile_name)
        console.print(Rule(f"{preset} under {profile_name}"))
        for title, case, history in cases:
            for at in INSTANTS:
                console.print(f"[bold cyan]{title}[/bold cyan]")
                decision = decide(case, history, at, strategy, profile)
                console.print(render_decision(decision, case, zone=strategy.timezone))


def run_morning_demo(console: Console, database: Path, seed: int = 7) -> morning.MorningReport:
    """Migrate a fresh `database`, start the service and the simulator, import the sample,
    run the morning with a live progress bar, print the summary and how to explore."""
    logging.getLogger().setLevel(logging.ERROR)  # the bar, not the worker's chatter
    return asyncio.run(_morning(console, database, seed))


async def _morning(console: Console, database: Path, seed: int) -> morning.MorningReport:
    start = morning.MORNING
    console.print(Rule("make demo: one morning of the collections dialer"))
    console.print(
        f"Simulated day: [bold]Tue {start:%d %b %Y}[/bold], each portfolio's campaign starts"
        f" at 09:00 in its own zone ({start:%H:%M} UTC for Shanghai; New York's 09:00 is"
        " 14:00 UTC), window 09:00-12:00 in each party's local time. Simulated time moves"
        " only as the work does (pacing waits, idle hours jumped); the wall clock is not"
        " read, so the same seed plays the same morning."
    )
    async with morning.demo_service(database, start=start, seed=seed) as service:
        console.print(
            f"service on {service.base_url} (SQLite {database}, in-process queue, telephony"
            f" simulator seed {seed}: it dials nobody and posts signed Twilio callbacks)"
        )
        seeded = await morning.seed(service.maker, service.settings, service.clock())
        console.print(
            f"imported {seeded.cases} cases from {morning.SAMPLE.name}"
            f" ({seeded.rejected} rejected); presets active for "
            + ", ".join(name for name, *_ in morning.PORTFOLIOS)
        )
        console.print(
            f"watch it live at {service.base_url}/dashboard with the supervisor key"
            f" {seeded.supervisor_key} (this service stops when the morning is over)",
            highlight=False,
        )
        schedule = await morning.create_campaigns(service.maker, service.clock())
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("attempts final", total=None, detail="")

            def show(snap: morning.Snapshot) -> None:
                total = max(snap.planned, 1) if snap.planned else None
                detail = (
                    f"simulated {snap.now:%H:%M} UTC, {snap.live} live,"
                    f" {service.telephony.in_flight} calls/texts playing"
                )
                bar.update(task, total=total, completed=snap.final, detail=detail)

            report = await morning.run_morning(service, schedule, on_progress=show)
        console.print(render_morning(report))
        stats = service.telephony.stats
        console.print(
            f"simulator: {sum(stats.posted.values())} signed callbacks posted,"
            f" {len(stats.rejected)} rejected, {len(stats.errors)} undelivered;"
            f" simulated {report.started:%H:%M}-{report.ended:%H:%M} UTC in"
            f" {report.elapsed_seconds:.1f} s"
        )
        if report.timed_out:
            console.print("[red]the morning did not finish in time: see the counts above[/red]")
    _explore(console, database, seeded.supervisor_key)
    return report


def _explore(console: Console, database: Path, key: str) -> None:
    console.print(Rule("explore what it left behind (README: the service, step by step)"))
    console.print(
        f"export DIALER_DATABASE_URL=sqlite+aiosqlite:///{database}\n"
        f"export SUP={key}          # a supervisor key, shown only here\n"
        "dialer serve &                 # then open http://127.0.0.1:8000/dashboard, paste $SUP\n"
        'curl -s -H "Authorization: Bearer $SUP" localhost:8000/v1/campaigns\n'
        "dialer campaign list; dialer campaign status <id>",
        highlight=False,
        soft_wrap=True,
    )
