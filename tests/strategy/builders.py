"""Small builders for engine tests: cases, parties, contact points, attempts, strategies.

Everything takes literal values; instants are built with `at(...)` in a named zone. No
wall clock anywhere. Defaults make the common case short to write: a debtor with one
verified mobile number that consented to calls and texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from strategy.decision import Decision
from strategy.document import Strategy, Tier
from strategy.engine import decide
from strategy.guardrails import GuardrailProfile, get_profile
from strategy.model import (
    Attempt,
    Case,
    CaseFlag,
    CaseStatus,
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

SHANGHAI = "Asia/Shanghai"
NEW_YORK = "America/New_York"
CHICAGO = "America/Chicago"
LOS_ANGELES = "America/Los_Angeles"

CN_MOBILE = "+8613800138000"
CN_MOBILE_2 = "+8613900139000"
US_CHICAGO_MOBILE = "+13125550100"  # area code 312: America/Chicago only
US_NY_MOBILE = "+12125550100"  # area code 212: America/New_York only
US_LA_MOBILE = "+14155550100"  # area code 415: America/Los_Angeles only
US_TOLL_FREE = "+18005550100"  # toll-free: ~40 candidate zones, a landline
UK_LANDLINE = "+442079460000"  # Europe/London, fixed line
UNPLACEABLE = "+99912345"  # phonenumbers cannot place it: no zone

VOICE = Channel.VOICE
SMS = Channel.SMS
EMAIL = Channel.EMAIL
BOTH_PHONE = frozenset({VOICE, SMS})

# Windows wide enough that only the profile's hours limit them.
ALL_DAY = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: str = SHANGHAI
) -> datetime:
    """A literal instant at a local wall time in `tz`."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return at(year, month, day, hour, minute, "UTC")


def phone(
    cp_id: str = "m1",
    number: str = CN_MOBILE,
    *,
    consent: Iterable[Channel] = BOTH_PHONE,
    opted_out: Iterable[Channel] = (),
    validity: Validity = Validity.VERIFIED,
    tz: str | None = None,
    do_not_call: bool = False,
    mobile: bool | None = None,
) -> ContactPoint:
    return ContactPoint(
        id=cp_id,
        kind=ContactKind.PHONE,
        value=number,
        consent=frozenset(consent),
        opted_out=frozenset(opted_out),
        validity=validity,
        timezone=tz,
        do_not_call=do_not_call,
        mobile=mobile,
    )


def email(
    cp_id: str = "e1",
    address: str = "debtor@example.com",
    *,
    opted_out: Iterable[Channel] = (),
    validity: Validity = Validity.VERIFIED,
    tz: str | None = None,
) -> ContactPoint:
    return ContactPoint(
        id=cp_id,
        kind=ContactKind.EMAIL,
        value=address,
        consent=frozenset({EMAIL}),
        opted_out=frozenset(opted_out),
        validity=validity,
        timezone=tz,
    )


def party(
    party_id: str,
    role: PartyRole,
    *points: ContactPoint,
    tz: str | None = None,
    knows_of_debt: bool = False,
    refused_contact: bool = False,
    relation: str | None = None,
) -> Party:
    return Party(
        id=party_id,
        role=role,
        name=party_id,
        relation=relation,
        knows_of_debt=knows_of_debt,
        refused_contact=refused_contact,
        timezone=tz,
        contact_points=points,
    )


def debtor(*points: ContactPoint, party_id: str = "d", tz: str | None = None) -> Party:
    return party(party_id, PartyRole.DEBTOR, *(points or (phone(),)), tz=tz)


def third_party(
    party_id: str = "t",
    *points: ContactPoint,
    knows_of_debt: bool = False,
    refused_contact: bool = False,
    tz: str | None = None,
) -> Party:
    return party(
        party_id,
        PartyRole.THIRD_PARTY,
        *(points or (phone(f"{party_id}-m", CN_MOBILE_2),)),
        tz=tz,
        knows_of_debt=knows_of_debt,
        refused_contact=refused_contact,
        relation="reference",
    )


def case(
    *parties: Party,
    due: date = date(2026, 3, 1),
    flags: Iterable[CaseFlag] = (),
    status: CaseStatus = CaseStatus.OPEN,
    stage: Stage = Stage.COLLECTION,
    stage_started_on: date | None = None,
    amount: str = "1000",
    balance: str | None = None,
    dispute_resolved_at: datetime | None = None,
) -> Case:
    return Case(
        id="c1",
        amount=Decimal(amount),
        currency="CNY",
        due_date=due,
        balance=Decimal(balance) if balance is not None else None,
        stage=stage,
        stage_started_on=stage_started_on,
        status=status,
        flags=frozenset(flags),
        parties=parties or (debtor(),),
        dispute_resolved_at=dispute_resolved_at,
    )


def attempt(
    when: datetime,
    party_id: str = "d",
    cp_id: str = "m1",
    channel: Channel = VOICE,
    result: Result = Result.NO_ANSWER,
    *,
    promise_amount: str | None = None,
    promise_date: date | None = None,
) -> Attempt:
    return Attempt(
        at=when,
        channel=channel,
        party_id=party_id,
        contact_point_id=cp_id,
        result=result,
        promise_amount=Decimal(promise_amount) if promise_amount is not None else None,
        promise_date=promise_date,
    )


def history(*attempts: Attempt, payments: Iterable[tuple[datetime, str]] = ()) -> History:
    return History(
        attempts=attempts,
        payments=tuple((ts, Decimal(amount)) for ts, amount in payments),
    )


def tier(tier_id: str = "t1", **fields: Any) -> Tier:
    """A tier from document-shaped fields; by default DPD 1+, voice and SMS, all day,
    the debtor only with full disclosure, no caps."""
    doc: dict[str, Any] = {
        "id": tier_id,
        "dpd": {"min": 1},
        "channels": ["voice", "sms"],
        "windows": ALL_DAY,
        "parties": {"debtor": {"contact": "always", "disclosure": "full"}},
    }
    doc.update(fields)
    return Tier.model_validate(doc)


def strategy(
    *tiers: Tier,
    profile: str = "cn-consumer",
    timezone: str = SHANGHAI,
    holiday_country: str | None = None,
    promise_grace_days: int = 2,
    name: str = "test",
) -> Strategy:
    return Strategy(
        name=name,
        version=3,
        profile=profile,
        timezone=timezone,
        holiday_country=holiday_country,
        promise_grace_days=promise_grace_days,
        tiers=tiers or (tier(),),
    )


def run(
    the_case: Case,
    the_history: History | None,
    now: datetime,
    the_strategy: Strategy,
    profile: str | GuardrailProfile | None = None,
) -> Decision:
    """decide() with the profile the strategy names unless another is given."""
    if profile is None:
        profile = the_strategy.profile
    prof = get_profile(profile) if isinstance(profile, str) else profile
    return decide(the_case, the_history or History(), now, the_strategy, prof)


def allowed_keys(decision: Decision) -> set[tuple[str, Channel]]:
    return {(a.contact_point_id, a.channel) for a in decision.allowed}


def refused_rules(decision: Decision, cp_id: str, channel: Channel) -> tuple[str, ...]:
    refusal = decision.refusal_for(cp_id, channel)
    assert refusal is not None, f"{cp_id}/{channel} was not refused: {decision.allowed}"
    return refusal.rules


def is_allowed(decision: Decision, cp_id: str, channel: Channel) -> bool:
    return decision.allowed_for(cp_id, channel) is not None
