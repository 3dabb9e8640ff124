"""Invariants of decide(), checked against random cases, histories, instants and strategies.

(1) No allowed action breaks a cap (the tier's or the profile's), a window (tier ∩ profile
in every candidate zone), an opt-out, a do-not-call, consent, a blocking flag, a pending
promise or a disclosure ceiling. The checks recompute everything from the raw case and
history with the simple reference code below, not with the engine's index or compiler.
(2) Every refusal's `next_allowed`, when given, is in fact allowed at that instant.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as phone_timezone

from strategy.decision import AllowedAction, Decision
from strategy.document import ContactWhen, Strategy, Tier
from strategy.engine import decide
from strategy.guardrails import PROFILES, GuardrailProfile
from strategy.model import (
    CHANNELS_BY_KIND,
    CONVERSATION_RESULTS,
    RIGHT_PARTY_RESULTS,
    Attempt,
    Case,
    CaseFlag,
    CaseStatus,
    Channel,
    ContactKind,
    ContactPoint,
    Disclosure,
    History,
    Party,
    PartyRole,
    Result,
    Validity,
)

UTC = ZoneInfo("UTC")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONES = ("Asia/Shanghai", "America/New_York", "America/Chicago", "Europe/London")
NUMBERS = (
    "+8613800138000",  # Shanghai mobile
    "+861012345678",  # Beijing landline
    "+13125550100",  # Chicago
    "+12125550100",  # New York
    "+16055550100",  # Denver or North Dakota Center
    "+18005550100",  # toll-free: ~40 zones
    "+442079460000",  # London landline
    "+99912345",  # unplaceable
)


@dataclass(frozen=True)
class Region:
    """Where a scenario's parties mostly live: keeps most examples inside some window."""

    home: str
    zones: tuple[str, ...]
    numbers: tuple[str, ...]


REGIONS = (
    Region("Asia/Shanghai", ("Asia/Shanghai",), ("+8613800138000", "+861012345678")),
    Region(
        "America/Chicago",
        ("America/Chicago", "America/New_York"),
        ("+13125550100", "+12125550100", "+16055550100"),
    ),
    Region("UTC", ZONES, NUMBERS),
)
# Instants: around China's Spring Festival and the US spring-forward change, and around
# the US fall-back change.
EPOCHS = (datetime(2026, 2, 10, tzinfo=UTC), datetime(2026, 10, 20, tzinfo=UTC))
SPAN_DAYS = 28
COMMON_RESULTS = (
    Result.NO_ANSWER,
    Result.NO_ANSWER,
    Result.BUSY,
    Result.VOICEMAIL,
    Result.DELIVERED,
    Result.FAILED,
    Result.PENDING,
    Result.NO_ANSWER,
    Result.BUSY,
    Result.RIGHT_PARTY,
    Result.THIRD_PARTY,
    Result.CALLBACK_REQUESTED,
)
BLOCKING = {
    CaseFlag.DISPUTE,
    CaseFlag.CEASE,
    CaseFlag.BANKRUPTCY,
    CaseFlag.DECEASED,
    CaseFlag.DO_NOT_CALL,
}


# --- generators --------------------------------------------------------------------------


def rarely(special: st.SearchStrategy[Any], usual: Any) -> st.SearchStrategy[Any]:
    """`usual` most of the time, `special` one time in eight: restrictive facts are rare
    enough that most examples still allow something, so the invariants get exercised."""
    return st.integers(0, 7).flatmap(lambda n: special if n == 0 else st.just(usual))


def subset(items: Iterable[Any]) -> st.SearchStrategy[frozenset[Any]]:
    return st.frozensets(st.sampled_from(tuple(items)))


@st.composite
def contact_points(draw: st.DrawFn, prefix: str, region: Region) -> ContactPoint:
    kind = draw(st.sampled_from((ContactKind.PHONE, ContactKind.PHONE, ContactKind.EMAIL)))
    chans = CHANNELS_BY_KIND[kind]
    few = st.frozensets(st.sampled_from(chans), max_size=1)
    return ContactPoint(
        id=prefix,
        kind=kind,
        value=draw(st.sampled_from(region.numbers))
        if kind is ContactKind.PHONE
        else f"{prefix}@x.test",
        consent=draw(rarely(subset(chans), frozenset(chans))),
        opted_out=draw(rarely(few, frozenset())),
        validity=draw(rarely(st.sampled_from(tuple(Validity)), Validity.VERIFIED)),
        timezone=draw(st.one_of(st.none(), st.sampled_from(region.zones))),
        do_not_call=draw(rarely(st.just(True), False)),
        mobile=draw(rarely(st.booleans(), None)),
    )


@st.composite
def parties(draw: st.DrawFn, index: int, region: Region) -> Party:
    pid = f"p{index}"
    role = (
        PartyRole.DEBTOR
        if index == 0 and draw(st.integers(0, 4))
        else draw(st.sampled_from(tuple(PartyRole)))
    )
    n = draw(st.integers(1, 3))
    return Party(
        id=pid,
        role=role,
        knows_of_debt=draw(st.booleans()),
        refused_contact=draw(rarely(st.just(True), False)),
        timezone=draw(st.one_of(st.none(), st.none(), st.sampled_from(region.zones))),
        contact_points=tuple(draw(contact_points(f"{pid}c{i}", region)) for i in range(n)),
    )


@st.composite
def cases(draw: st.DrawFn, now: datetime, region: Region) -> Case:
    n = draw(st.integers(1, 4))
    rare_flags = st.frozensets(st.sampled_from(tuple(CaseFlag)), max_size=1)
    return Case(
        id="c",
        amount=Decimal(1000),
        currency="CNY",
        due_date=now.date() - timedelta(days=draw(st.integers(-5, 60))),
        balance=draw(rarely(st.sampled_from((Decimal(0), Decimal(300))), None)),
        status=draw(rarely(st.sampled_from(tuple(CaseStatus)), CaseStatus.OPEN)),
        flags=draw(rare_flags) if draw(st.integers(0, 5)) == 0 else frozenset(),
        parties=tuple(draw(parties(i, region)) for i in range(n)),
    )


@st.composite
def histories(draw: st.DrawFn, case: Case, now: datetime) -> History:
    points = [(p, cp) for p in case.parties for cp in p.contact_points]
    attempts = []
    for _ in range(draw(st.one_of(st.integers(0, 8), st.integers(0, 40)))):
        p, cp = draw(st.sampled_from(points))
        result = draw(
            st.sampled_from(tuple(Result))
            if draw(st.integers(0, 24)) == 0
            else st.sampled_from(COMMON_RESULTS)
        )
        when = now - timedelta(minutes=draw(st.integers(1, 10 * 24 * 60)))
        promise = result is Result.PROMISE_TO_PAY
        attempts.append(
            Attempt(
                at=when,
                channel=draw(st.sampled_from(CHANNELS_BY_KIND[cp.kind])),
                party_id=p.id,
                contact_point_id=cp.id,
                result=result,
                promise_amount=Decimal(draw(st.sampled_from((100, 500)))) if promise else None,
                promise_date=when.date() + timedelta(days=draw(st.integers(0, 6)))
                if promise
                else None,
            )
        )
    payments: tuple[tuple[datetime, Decimal], ...] = ()
    if draw(st.integers(0, 4)) == 0:
        paid_at = now - timedelta(minutes=draw(st.integers(1, 10 * 24 * 60)))
        payments = ((paid_at, Decimal(draw(st.sampled_from((50, 500))))),)
    return History(attempts=tuple(attempts), payments=payments)


def spans() -> st.SearchStrategy[list[str]]:
    starts = rarely(st.integers(0, 20), None).flatmap(
        lambda h: st.just(h) if h is not None else st.integers(6, 12)
    )
    return st.lists(
        st.tuples(starts, st.integers(4, 12)).map(
            lambda s: f"{s[0]:02d}:00-{min(s[0] + s[1], 24):02d}:00"
        ),
        min_size=1,
        max_size=2,
    ).map(lambda xs: _disjoint(xs))


def _disjoint(texts: list[str]) -> list[str]:
    out: list[str] = []
    last_end = -1
    for t in sorted(texts):
        a, b = int(t[:2]), int(t[6:8])
        if a >= last_end:
            out.append(t)
            last_end = b
    return out


@st.composite
def party_rules(draw: st.DrawFn) -> dict[str, Any]:
    disclosures = st.sampled_from([d.value for d in Disclosure])
    rule: dict[str, Any] = {
        "contact": draw(rarely(st.sampled_from(tuple(ContactWhen)), ContactWhen.ALWAYS)).value,
        "disclosure": draw(disclosures),
    }
    if draw(st.booleans()):
        rule["disclosure_if_knows_debt"] = draw(disclosures)
    if draw(st.booleans()):
        rule["disclosure_if_debtor_unreachable"] = draw(disclosures)
    if draw(rarely(st.just(True), False)):
        rule["channels"] = sorted(draw(subset([c.value for c in Channel]).filter(bool)))
    return rule


@st.composite
def caps(draw: st.DrawFn) -> dict[str, Any]:
    cap: dict[str, Any] = {
        "scope": draw(st.sampled_from(("case", "party", "contact_point"))),
        "limit": draw(st.integers(0, 5)),
        "count": draw(st.sampled_from(("attempts", "conversations", "unanswered", "occasions"))),
    }
    if draw(st.booleans()):
        cap["channels"] = sorted(draw(subset([c.value for c in Channel]).filter(bool)))
    if draw(st.integers(0, 3)) == 0:
        cap["roles"] = sorted(draw(subset([r.value for r in PartyRole]).filter(bool)))
    # Occasions are local days: such a cap counts over local days only.
    if cap["count"] == "occasions" or draw(st.booleans()):
        cap["local_days"] = draw(st.integers(1, 7))
    else:
        cap["rolling_hours"] = draw(st.sampled_from((1, 4, 24, 72, 168)))
    return cap


@st.composite
def tiers(draw: st.DrawFn, tier_id: str, dpd: tuple[int | None, int | None]) -> Tier:
    roles = {"debtor"} | draw(subset([r.value for r in PartyRole]))
    windows = (
        {}
        if draw(st.booleans())
        else {d: draw(spans()) for d in WEEKDAYS if draw(rarely(st.just(False), True))}
    )
    hard = ("morning", "monday", "avoid_weekend", "avoid_last_hour", "early_month")
    return Tier.model_validate(
        {
            "id": tier_id,
            "dpd": {"min": dpd[0], "max": dpd[1]},
            "channels": sorted(
                draw(rarely(subset([c.value for c in Channel]).filter(bool), frozenset(Channel)))
            ),
            "windows": windows,
            "skip_holidays": draw(st.booleans()),
            "parties": {r: draw(party_rules()) for r in roles},
            "debtor_unreachable": {
                "min_attempts": draw(st.integers(1, 6)),
                "days": draw(st.integers(1, 3)),
            },
            "caps": draw(st.lists(caps(), max_size=3)),
            "spacing": [
                {
                    "scope": draw(st.sampled_from(("case", "party", "contact_point"))),
                    "minutes": draw(st.sampled_from((0, 30, 60, 120, 600))),
                }
                for _ in range(draw(st.integers(0, 2)))
            ],
            "quiet_hours_after_conversation": draw(st.sampled_from((0, 0, 2, 12))),
            "preferences": sorted(draw(subset(("morning", "monday", "avoid_weekend")))),
            "hard_preferences": sorted(
                draw(rarely(st.frozensets(st.sampled_from(hard), max_size=1), frozenset()))
            ),
        }
    )


@st.composite
def strategies(draw: st.DrawFn, profile: str, region: Region) -> Strategy:
    cuts = sorted(draw(st.sets(st.integers(-3, 45), max_size=2)))
    # Tiers cover every dpd: (..., c1 - 1), (c1, c2 - 1), (c2, ...).
    lows: list[int | None] = [None, *cuts]
    highs: list[int | None] = [*(c - 1 for c in cuts), None]
    ranges = list(zip(lows, highs, strict=True))
    return Strategy(
        name="prop",
        profile=profile,
        timezone=draw(rarely(st.sampled_from(("Asia/Shanghai", "America/New_York")), region.home)),
        holiday_country=draw(st.sampled_from((None, "CN", "US"))),
        promise_grace_days=draw(st.integers(0, 3)),
        tiers=tuple(draw(tiers(f"t{i}", r)) for i, r in enumerate(ranges)),
    )


@dataclass(frozen=True)
class Scenario:
    case: Case
    history: History
    now: datetime
    strategy: Strategy
    profile: GuardrailProfile


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    region = draw(st.sampled_from(REGIONS))
    day = draw(st.sampled_from(EPOCHS)).date() + timedelta(days=draw(st.integers(0, SPAN_DAYS)))
    # Mostly daytime where the parties live; any minute of the day otherwise.
    minute = draw(rarely(st.integers(0, 24 * 60 - 1), None)) or draw(st.integers(9 * 60, 19 * 60))
    local = datetime.combine(day, time(minute // 60, minute % 60), ZoneInfo(region.zones[0]))
    now = local.astimezone(UTC)
    profile = PROFILES[draw(st.sampled_from(sorted(PROFILES)))]
    the_case = draw(cases(now, region))
    return Scenario(
        case=the_case,
        history=draw(histories(the_case, now)),
        now=now,
        strategy=draw(strategies(profile.name, region)),
        profile=profile,
    )


# --- the reference -----------------------------------------------------------------------


def number_zones(number: str) -> tuple[str, ...]:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in phone_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown")


def is_landline(cp: ContactPoint) -> bool:
    if cp.mobile is not None:
        return not cp.mobile
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(cp.value, None))
    except phonenumbers.NumberParseException:
        return False  # unknown: the engine may text it
    return kind in (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
    )


def candidate_zones(party: Party, cp: ContactPoint, home: str) -> tuple[str, ...]:
    """Contact point zone, else party zone, else the number's zones, else every zone of
    the party's phones, else the strategy's zone (as documented)."""
    if cp.timezone:
        return (cp.timezone,)
    if party.timezone:
        return (party.timezone,)
    if cp.kind is ContactKind.PHONE and number_zones(cp.value):
        return number_zones(cp.value)
    # Every zone any of the party's phones may be in: its own zone, else its number's.
    union: dict[str, None] = {}
    for other in party.contact_points:
        if other.kind is ContactKind.PHONE:
            for z in (other.timezone,) if other.timezone else number_zones(other.value):
                union[z] = None
    return tuple(union) or (home,)


def minutes_of(local: datetime) -> int:
    return local.hour * 60 + local.minute


def span_minutes(text: str) -> tuple[int, int]:
    a, b = text.split("-")
    end = int(b[:2]) * 60 + int(b[3:])
    return int(a[:2]) * 60 + int(a[3:]), 23 * 60 + 59 if end == 24 * 60 else end


def tier_day_spans(tier: Tier, country: str | None, day: date) -> list[tuple[int, int]]:
    weekday = day.weekday()
    name = WEEKDAYS[weekday]
    if country is not None and tier.skip_holidays:
        cal = holidays.country_holidays(country, years=day.year)
        if day in cal and not cal.is_working_day(day):
            return []
        if weekday >= 5 and cal.is_working_day(day):
            name = "mon"  # an adjusted working day takes Monday's hours
    if not tier.windows:
        return [(0, 24 * 60)]
    return [s.minutes for s in tier.windows.get(name, [])]  # type: ignore[call-overload]


def inside_windows(s: Scenario, tier: Tier, zones: tuple[str, ...], t: datetime) -> bool:
    p_lo, p_hi = s.profile.window.minutes
    for z in zones:
        local = t.astimezone(ZoneInfo(z))
        m = minutes_of(local) + local.second / 60
        if not p_lo <= m < p_hi:
            return False
        if not any(
            a <= m < b for a, b in tier_day_spans(tier, s.strategy.holiday_country, local.date())
        ):
            return False
    return True


def select_tier(s: Scenario, t: datetime) -> Tier | None:
    dpd = (t.astimezone(ZoneInfo(s.strategy.timezone)).date() - s.case.due_date).days
    for tier in s.strategy.tiers:
        if tier.dpd is not None and tier.dpd.contains(dpd):
            return tier
    return None


def counted(a: Attempt, kind: str) -> bool:
    if kind in ("attempts", "occasions"):
        return True
    conversation = a.result in CONVERSATION_RESULTS
    return conversation if kind == "conversations" else not conversation


def cap_breaches(
    s: Scenario, action: AllowedAction, zones: tuple[str, ...], t: datetime
) -> list[str]:
    roles = {p.id: p.role for p in s.case.parties}
    tier = select_tier(s, t)
    assert tier is not None
    all_caps = [(c, f"tier {c.describe()}") for c in tier.caps]
    all_caps += [(pc.cap, f"profile {pc.clause.id}") for pc in s.profile.caps]
    out = []
    cand = action.candidate
    for cap, label in all_caps:
        if cap.channels is not None and cand.channel not in cap.channels:
            continue
        if cap.roles is not None and cand.party_role not in cap.roles:
            continue

        def in_scope(a: Attempt, cap: Any = cap) -> bool:
            if cap.channels is not None and a.channel not in cap.channels:
                return False
            if not counted(a, cap.count):
                return False
            if cap.scope == "contact_point":
                return a.contact_point_id == cand.contact_point_id
            if cap.scope == "party":
                return a.party_id == cand.party_id
            return cap.roles is None or roles.get(a.party_id) in cap.roles

        mine = [a for a in s.history.attempts if in_scope(a)]
        if cap.rolling_hours is not None:
            since = t - timedelta(hours=cap.rolling_hours)
            counts = [sum(1 for a in mine if since < a.at <= t)]
        else:
            assert cap.local_days is not None
            counts = []
            for z in zones:
                tz = ZoneInfo(z)
                today = t.astimezone(tz).date()
                first = today - timedelta(days=cap.local_days - 1)
                days = [a.at.astimezone(tz).date() for a in mine]
                if cap.count != "occasions":
                    counts.append(sum(1 for d in days if first <= d <= today))
                # An occasion is a local day with a contact; a contact on one adds none.
                elif today not in days or cap.limit == 0:
                    counts.append(len({d for d in days if first <= d <= today}))
            if not counts:
                continue
        if max(counts) >= cap.limit:
            out.append(f"{label}: {max(counts)} >= {cap.limit}")
    return out


def promise_pending(s: Scenario, t: datetime) -> bool:
    promises = [
        a
        for a in s.history.attempts
        if a.result is Result.PROMISE_TO_PAY and a.promise_date is not None and a.at <= t
    ]
    if not promises:
        return False
    latest = max(promises, key=lambda a: a.at)
    assert latest.promise_date is not None
    paid = sum((amt for when, amt in s.history.payments if when >= latest.at), Decimal(0))
    amount = latest.promise_amount
    if (amount is not None and paid >= amount) or (amount is None and paid > 0):
        return False
    resume_day = latest.promise_date + timedelta(days=s.strategy.promise_grace_days + 1)
    resume = datetime.combine(resume_day, time(), ZoneInfo(s.strategy.timezone))
    return t < resume


def violations(s: Scenario, decision: Decision, t: datetime) -> list[str]:
    """Every rule an allowed action of `decision` (taken at `t`) breaks, by the reference."""
    case, hist, profile = s.case, s.history, s.profile
    out: list[str] = []
    if not decision.allowed:
        return out
    if case.status is not CaseStatus.OPEN or case.outstanding <= 0:
        out.append("case not open or nothing outstanding")
    if case.flags & BLOCKING:
        out.append(f"blocking flags {sorted(case.flags & BLOCKING)}")
    disputes = [a.at for a in hist.attempts if a.result is Result.DISPUTE]
    if disputes and (case.dispute_resolved_at is None or max(disputes) > case.dispute_resolved_at):
        out.append("a dispute in history")
    if promise_pending(s, t):
        out.append("a promise is pending")
    tier = select_tier(s, t)
    if tier is None:
        return [*out, "no tier matches"]
    parties = {p.id: p for p in case.parties}
    for action in decision.allowed:
        cand = action.candidate
        party = parties[cand.party_id]
        cp = next(c for c in party.contact_points if c.id == cand.contact_point_id)
        what = f"{cp.id}/{cand.channel}"
        zones = candidate_zones(party, cp, s.strategy.timezone)
        if set(action.zones) != set(zones):
            out.append(f"{what}: zones {action.zones} != {zones}")
        if cand.channel not in CHANNELS_BY_KIND[cp.kind]:
            out.append(f"{what}: channel not of this kind of contact point")
        if cand.channel in cp.opted_out:
            out.append(f"{what}: opted out")
        if cp.do_not_call and cand.channel is not Channel.EMAIL:
            out.append(f"{what}: do-not-call")
        if cp.validity in (Validity.WRONG_NUMBER, Validity.INVALID):
            out.append(f"{what}: invalid contact point")
        if cand.channel in profile.consent_required and cand.channel not in cp.consent:
            out.append(f"{what}: no consent")
        if cand.channel is Channel.SMS and is_landline(cp):
            out.append(f"{what}: SMS to a landline")
        if party.refused_contact:
            out.append(f"{what}: the party refused contact")
        refusals = [
            a for a in hist.attempts if a.party_id == party.id and a.result is Result.REFUSAL
        ]
        if party.role is PartyRole.THIRD_PARTY and refusals:
            out.append(f"{what}: the third party refused on a call")
        if CaseFlag.ATTORNEY in case.flags and party.role is not PartyRole.ATTORNEY:
            out.append(f"{what}: represented debtor, not the attorney")
        if party.role is PartyRole.ATTORNEY and CaseFlag.ATTORNEY not in case.flags:
            out.append(f"{what}: attorney not on record")
        if party.role is PartyRole.THIRD_PARTY and profile.third_party_once:
            # 15 USC 1692b(3): once, unless requested; a request allows the one call asked
            # for (on its contact point and channel), and a delivered text is a contact.
            spoke = sorted(
                (
                    a
                    for a in hist.attempts
                    if a.party_id == party.id
                    and (a.result in CONVERSATION_RESULTS or a.result is Result.DELIVERED)
                ),
                key=lambda a: a.at,
            )
            last = spoke[-1] if spoke else None
            asked_here = (
                last is not None
                and last.result is Result.CALLBACK_REQUESTED
                and (last.contact_point_id, last.channel) == (cp.id, cand.channel)
            )
            if spoke and not asked_here:
                out.append(f"{what}: third party already contacted once")
        # Disclosure: the profile's ceiling per role, and never above what the tier asks.
        ceiling = profile.max_disclosure.get(party.role, Disclosure.FULL)
        if action.disclosure.rank > ceiling.rank:
            out.append(f"{what}: disclosure {action.disclosure} above the profile's {ceiling}")
        if action.voicemail_disclosure.rank > profile.voicemail_max_disclosure.rank:
            out.append(f"{what}: voicemail disclosure {action.voicemail_disclosure}")
        rule = tier.parties.get(party.role)
        if party.role is not PartyRole.ATTORNEY:
            if tier.parties and rule is None:
                out.append(f"{what}: role {party.role} not in tier {tier.id}")
            if rule is not None:
                if rule.contact == "never":
                    out.append(f"{what}: tier never contacts a {party.role}")
                asked_for = [rule.disclosure, rule.disclosure_if_knows_debt]
                asked_for.append(rule.disclosure_if_debtor_unreachable)
                top = max(d.rank for d in asked_for if d is not None)
                if action.disclosure.rank > top:
                    out.append(f"{what}: disclosure above the tier's rule")
                if rule.channels is not None and cand.channel not in rule.channels:
                    out.append(f"{what}: channel not in the party rule")
        if cand.channel not in tier.channels:
            out.append(f"{what}: channel not in tier")
        if not inside_windows(s, tier, zones, t):
            out.append(f"{what}: outside tier ∩ profile window in {zones}")
        if action.window_end <= t:
            out.append(f"{what}: window ends before it starts")
        out.extend(f"{what}: cap {b}" for b in cap_breaches(s, action, zones, t))
        # Spacing: at least `minutes` since the last attempt in scope.
        for sp in tier.spacing:
            if sp.minutes == 0 or (sp.channels is not None and cand.channel not in sp.channels):
                continue
            for a in hist.attempts:
                if sp.channels is not None and a.channel not in sp.channels:
                    continue
                same = (
                    a.contact_point_id == cp.id
                    if sp.scope == "contact_point"
                    else a.party_id == party.id
                    if sp.scope == "party"
                    else True
                )
                if same and a.at <= t < a.at + timedelta(minutes=sp.minutes):
                    out.append(f"{what}: spacing {sp.scope} {sp.minutes} min after {a.at}")
        # Quiet periods after a right-party conversation with this (non third) party.
        if party.role is not PartyRole.THIRD_PARTY:
            rpcs = [
                a.at
                for a in hist.attempts
                if a.party_id == party.id and a.result in RIGHT_PARTY_RESULTS and a.at <= t
            ]
            if rpcs:
                last = max(rpcs)
                if t < last + timedelta(hours=tier.quiet_hours_after_conversation):
                    out.append(f"{what}: inside the tier's quiet period")
                # 12 CFR 1006.14(b)(2)(ii): seven consecutive days, the conversation's
                # date being the first, in the person's local time (every possible zone).
                days = profile.quiet_days_after_conversation
                if cand.channel in profile.quiet_channels and days:
                    ends = [
                        datetime.combine(
                            last.astimezone(ZoneInfo(z)).date() + timedelta(days=days),
                            time(),
                            ZoneInfo(z),
                        )
                        for z in zones
                    ]
                    if t < max(ends):
                        out.append(f"{what}: inside the profile's quiet period")
    return out


# --- the properties ----------------------------------------------------------------------

# Sized for ~30 s on a 2-core machine; raise it for a longer hunt (e.g. 5000).
EXAMPLES = int(os.environ.get("STRATEGY_PROPERTY_EXAMPLES", "150"))


@settings(max_examples=EXAMPLES, deadline=None)
@given(scenarios())
def test_no_allowed_action_breaks_a_rule(s: Scenario) -> None:
    decision = decide(s.case, s.history, s.now, s.strategy, s.profile)
    assert violations(s, decision, s.now) == []
    assert {a.candidate for a in decision.allowed}.isdisjoint(r.candidate for r in decision.refused)
    for refusal in decision.refused:
        assert refusal.reasons, "a refusal names at least one rule"


@settings(max_examples=max(1, EXAMPLES * 2 // 5), deadline=None)
@given(scenarios())
def test_next_allowed_is_allowed(s: Scenario) -> None:
    decision = decide(s.case, s.history, s.now, s.strategy, s.profile)
    checked = 0
    for refusal in decision.refused:
        nxt = refusal.next_allowed
        if nxt is None:
            continue
        assert nxt > s.now
        later = decide(s.case, s.history, nxt, s.strategy, s.profile)
        c = refusal.candidate
        assert later.allowed_for(c.contact_point_id, c.channel) is not None, (
            f"{c} refused at {s.now} for {refusal.rules}, next_allowed {nxt}, but then"
            f" refused for {(later.refusal_for(c.contact_point_id, c.channel) or refusal).rules}"
        )
        # What the engine allows then also passes the reference.
        assert violations(s, later, nxt) == []
        checked += 1
        if checked >= 6:
            break
