"""`dialer demo`: the strategy engine on realistic cases from both presets, at a few
instants, printed as readable decisions. Nothing is stored and nobody is dialled."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from rich.console import Console
from rich.rule import Rule

from dialer.render import render_decision
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
