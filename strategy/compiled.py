"""A strategy document compiled against a guardrail profile, once, for fast decisions.

Compiling folds the profile into each tier: windows are intersected with the profile's
hours, the profile's caps join the tier's (each remembering the clause it enforces),
disclosure is capped per role, and each tier's caps are grouped by period with a table of
the caps each kind of history row counts towards. The engine then only looks things up.

A compiled strategy also keeps pure results the engine found for it (per tier: the contact
intervals of a zone's local day, what the tier says of a party role and channel, window
verdicts and preference scores per instant; per strategy: the tier of a case's dates on a
local day). They depend on nothing but the compiled strategy and their key, never on a
case's history, and the per-instant ones are bounded (`remember`).
"""

from __future__ import annotations

import itertools
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from strategy.calendar import Interval, day_kind, local_interval
from strategy.document import (
    WEEKDAYS,
    Action,
    Cap,
    ContactWhen,
    Counted,
    Escalation,
    PartyRule,
    Preference,
    Scope,
    Spacing,
    Strategy,
    Tier,
)
from strategy.guardrails import Clause, GuardrailProfile, may_decide_under
from strategy.history import RowKey
from strategy.model import Channel, Disclosure, PartyRole, ProfileMismatch, Stage

_ALL_CHANNELS = frozenset(Channel)
_K = TypeVar("_K")
_V = TypeVar("_V")
_ids = itertools.count(1)

MinuteSpan = tuple[int, int]
# A cap's scope as the engine's tables code it.
SCOPE_CONTACT_POINT, SCOPE_PARTY, SCOPE_CASE = 0, 1, 2
SCOPE_CODES = {Scope.CONTACT_POINT: 0, Scope.PARTY: 1, Scope.CASE: 2}
MORNING_END = 12 * 60
LAST_HOUR = 60
MONTH_END_DAYS = 3
EARLY_MONTH_LAST_DAY = 10


@dataclass(frozen=True, slots=True)
class CompiledCap:
    cap: Cap
    channels: frozenset[Channel]
    roles: frozenset[PartyRole]  # the party roles a case-scope cap counts
    rule: str
    clause: Clause | None
    message: str  # "of 3 attempts per party (sms/voice) in 1 local day(s)", after the count
    source: str | None  # "<clause id>: <source>", as a reason shows it
    # The cap's fields the engine reads per decision, copied out of the document model (a
    # compiled engine reads these as C fields, a pydantic model's through a generic lookup).
    scope: Scope
    count: Counted
    limit: int
    local_days: int | None
    rolling_seconds: float | None
    # The cap counts contact occasions (local days with a contact), not attempts.
    occasions: bool


@dataclass(frozen=True, slots=True)
class CapPeriod:
    """The caps of a tier that count over the same period, and which of them a history
    row of each kind (channel, party role, conversation) counts towards: one pass over the
    period's attempts counts every cap and group at once."""

    local_days: int | None
    rolling_seconds: float | None
    # row kind -> ((cap index, scope code), ...); kinds no cap counts are absent.
    row_caps: dict[RowKey, tuple[tuple[int, int], ...]]


@dataclass(frozen=True, slots=True)
class CompiledSpacing:
    spacing: Spacing
    channels: frozenset[Channel]
    seconds: float
    scope: Scope
    rule: str  # "spacing.<scope>"
    message: str  # "at least 120 min between attempts per party"


@dataclass(frozen=True, slots=True)
class CompiledPartyRule:
    rule: PartyRule
    channels: frozenset[Channel]
    max_disclosure: Disclosure  # the profile's ceiling for this role


@dataclass(frozen=True, slots=True)
class CompiledEscalation:
    """An escalation's conditions and task, copied out of the document model."""

    escalation: Escalation
    min_dpd: int | None
    min_days_in_stage: int | None
    days_without_progress: int | None
    key: str  # "<tier id>:<action>"
    action: Action
    requires_approval: bool  # the escalation's own flag or the profile's approval list
    note: str


@dataclass(frozen=True, slots=True)
class CompiledTier:
    key: int
    tier: Tier
    # Per weekday (0 = Monday): local minute spans, tier ∩ profile, hard preferences applied.
    spans: tuple[tuple[MinuteSpan, ...], ...]
    # The same without the profile's hours and hard preferences: to explain a refusal.
    tier_spans: tuple[tuple[MinuteSpan, ...], ...]
    caps: tuple[CompiledCap, ...]
    cap_limits: tuple[int, ...]  # per cap index
    cap_scopes: tuple[int, ...]  # per cap index: SCOPE_CONTACT_POINT, _PARTY or _CASE
    cap_periods: tuple[CapPeriod, ...]  # the caps with limit > 0, by period
    spacing: tuple[CompiledSpacing, ...]
    parties: dict[PartyRole, CompiledPartyRule]
    escalations: tuple[CompiledEscalation, ...]
    # The debtor counts as unreachable after this many attempts in this many local days.
    unreachable_days: int
    unreachable_min_attempts: int
    # The tier's first day in stage and first day past due, when its ranges bound them.
    days_in_stage_min: int | None
    dpd_min: int | None
    quiet_seconds: float
    quiet_channels: frozenset[Channel]
    # The profile's quiet period after a conversation, in local calendar days.
    profile_quiet_days: int
    holiday_country: str | None
    holiday_subdivision: str | None
    allowed_by: str  # "strategy <name> v<n> tier <id> under profile <name>"
    # (zone, local day ordinal, guarded) -> intervals; filled lazily, pure.
    interval_cache: dict[tuple[str, int, bool], tuple[Interval, ...]]
    # (party role, knows of the debt, channel) -> the engine's per-tier facts (its own
    # type, which this module does not import); pure.
    facts_cache: dict[tuple[PartyRole, bool, Channel], Any]
    # (channel, party role, disclosure) -> (template key, voicemail disclosure, whether a
    # text carries the opt-out line); pure.
    template_keys: dict[tuple[Channel, PartyRole, Disclosure], tuple[str, Disclosure, bool]]
    # (zones, instant) -> the window verdict there (inside, end or next opening, rule,
    # message): the same for every case decided at that instant, as a campaign's planner
    # decides its cases at one instant and the next window openings. Pure; bounded.
    window_cache: dict[tuple[tuple[str, ...], float], tuple[bool, float | None, str, str, bool]]
    # (zone, instant) -> the soft preferences' score and notes there; pure, bounded.
    preference_cache: dict[tuple[str, float], tuple[int, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class CompiledStrategy:
    strategy: Strategy
    profile: GuardrailProfile
    tiers: tuple[CompiledTier, ...]
    allowed_by_prefix: str
    # How far back from a decision's instant any rule counts attempts (caps' periods in
    # any zone, spacing, the debtor-unreachable days): older attempts only carry facts.
    lookback: timedelta
    # (home-zone local day ordinal, due date, stage, stage start) -> (tier or None, days
    # past due, days in stage): the tier a case of those dates is in that day. Pure; bounded.
    tier_cache: dict[
        tuple[int, date, Stage, date | None], tuple[CompiledTier | None, int, int | None]
    ]


def _clip(spans: list[MinuteSpan], lo: int, hi: int) -> list[MinuteSpan]:
    return [(max(a, lo), min(b, hi)) for a, b in spans if min(b, hi) > max(a, lo)]


def _compile_tier(tier: Tier, profile: GuardrailProfile, strategy: Strategy) -> CompiledTier:
    holiday_country, holiday_subdivision = strategy.holiday_country, strategy.holiday_subdivision
    allowed_by = (
        f"strategy {strategy.name} v{strategy.version} tier {tier.id} under profile {profile.name}"
    )
    p_lo, p_hi = profile.window.minutes
    hard = set(tier.hard_preferences)
    spans: list[tuple[MinuteSpan, ...]] = []
    tier_spans: list[tuple[MinuteSpan, ...]] = []
    for name in WEEKDAYS:
        raw = tier.windows.get(name)  # type: ignore[call-overload]
        # A tier without windows may contact at any hour the profile allows.
        day = (
            [s.minutes for s in raw]
            if raw is not None
            else ([] if tier.windows else [(0, 24 * 60)])
        )
        day.sort()
        tier_spans.append(tuple(day))
        clipped = _clip(day, p_lo, p_hi)
        if Preference.MORNING in hard:
            clipped = _clip(clipped, 0, MORNING_END)
        if Preference.AVOID_LAST_HOUR in hard and clipped:
            a, b = clipped[-1]
            clipped[-1:] = [(a, b - LAST_HOUR)] if b - LAST_HOUR > a else []
        spans.append(tuple(clipped))

    caps: list[CompiledCap] = []
    for cap in tier.caps:
        caps.append(_compile_cap(cap, f"cap.{cap.scope}.{cap.count}", None))
    for pcap in profile.caps:
        caps.append(_compile_cap(pcap.cap, f"guardrail.cap.{pcap.clause.id}", pcap.clause))

    spacing = tuple(
        CompiledSpacing(
            s,
            frozenset(s.channels or _ALL_CHANNELS),
            s.minutes * 60.0,
            s.scope,
            f"spacing.{s.scope}",
            f"at least {s.minutes} min between attempts per {scope_label(s.scope)}",
        )
        for s in tier.spacing
        if s.minutes > 0
    )
    escalations = tuple(
        CompiledEscalation(
            escalation=e,
            min_dpd=e.min_dpd,
            min_days_in_stage=e.min_days_in_stage,
            days_without_progress=e.days_without_progress,
            key=f"{tier.id}:{e.action}",
            action=e.action,
            requires_approval=e.requires_approval or e.action in profile.approval_required,
            note=e.note,
        )
        for e in tier.escalations
    )

    parties: dict[PartyRole, CompiledPartyRule] = {}
    rules = dict(tier.parties)
    if not rules:
        rules = {
            PartyRole.DEBTOR: PartyRule(contact=ContactWhen.ALWAYS, disclosure=Disclosure.FULL)
        }
    for role, prule in rules.items():
        chans = (prule.channels or tier.channels) & tier.channels
        parties[role] = CompiledPartyRule(
            rule=prule,
            channels=frozenset(chans),
            max_disclosure=profile.max_disclosure.get(role, Disclosure.FULL),
        )
    return CompiledTier(
        key=next(_ids),
        tier=tier,
        spans=tuple(spans),
        tier_spans=tuple(tier_spans),
        caps=tuple(caps),
        cap_limits=tuple(c.cap.limit for c in caps),
        cap_scopes=tuple(SCOPE_CODES[c.cap.scope] for c in caps),
        cap_periods=_cap_periods(caps),
        spacing=spacing,
        parties=parties,
        escalations=escalations,
        unreachable_days=tier.debtor_unreachable.days,
        unreachable_min_attempts=tier.debtor_unreachable.min_attempts,
        days_in_stage_min=tier.days_in_stage.min if tier.days_in_stage is not None else None,
        dpd_min=tier.dpd.min if tier.dpd is not None else None,
        quiet_seconds=tier.quiet_hours_after_conversation * 3600.0,
        quiet_channels=profile.quiet_channels,
        profile_quiet_days=profile.quiet_days_after_conversation,
        holiday_country=holiday_country,
        holiday_subdivision=holiday_subdivision,
        allowed_by=allowed_by,
        interval_cache={},
        facts_cache={},
        template_keys={},
        window_cache={},
        preference_cache={},
    )


def _cap_periods(caps: list[CompiledCap]) -> tuple[CapPeriod, ...]:
    """Group the caps by period and tabulate, per row kind, the caps that count it.

    A row counts towards a cap when its channel is the cap's, its kind is the one the cap
    counts and, for a case- or party-scope cap, its party's role is one the cap counts (a
    party's rows all carry its role, so a party cap for guarantors need not count the
    debtor's rows: it never binds the debtor; a contact point cap counts every row of its
    group, the candidate's role selects it).
    An occasions cap counts every row here: a period holds no more occasions than rows,
    so the count only tells the engine which occasions caps to check day by day.
    Caps with limit 0 refuse whatever the count and are left to the engine."""
    by_period: dict[tuple[int | None, float | None], list[int]] = {}
    for i, c in enumerate(caps):
        if c.cap.limit <= 0:
            continue
        rolling = c.cap.rolling_hours * 3600.0 if c.cap.rolling_hours is not None else None
        by_period.setdefault((c.cap.local_days, rolling), []).append(i)
    out = []
    for (days, rolling), indices in by_period.items():
        row_caps: dict[RowKey, tuple[tuple[int, int], ...]] = {}
        for channel in Channel:
            for role in PartyRole:
                for conversation in (False, True):
                    hits = tuple(
                        (i, SCOPE_CODES[caps[i].cap.scope])
                        for i in indices
                        if _counts_row(caps[i], channel, role, conversation)
                    )
                    if hits:
                        row_caps[channel, role, conversation] = hits
        out.append(CapPeriod(days, rolling, row_caps))
    return tuple(out)


def _counts_row(c: CompiledCap, channel: Channel, role: PartyRole, conversation: bool) -> bool:
    if channel not in c.channels:
        return False
    if c.cap.scope is not Scope.CONTACT_POINT and role not in c.roles:
        return False
    counted = c.cap.count
    if counted is Counted.ATTEMPTS or counted is Counted.OCCASIONS:
        return True
    return (counted is Counted.CONVERSATIONS) == conversation


def _compile_cap(cap: Cap, rule: str, clause: Clause | None) -> CompiledCap:
    roles = cap.roles or frozenset(PartyRole)
    channels = frozenset(cap.channels or _ALL_CHANNELS)
    period = f"{cap.local_days} local day(s)" if cap.local_days else f"{cap.rolling_hours:g} h"
    what = f"{counted_label(cap.count)} per {scope_label(cap.scope)} ({'/'.join(sorted(channels))})"
    return CompiledCap(
        cap=cap,
        channels=channels,
        roles=frozenset(roles),
        rule=rule,
        clause=clause,
        message=f"of {cap.limit} {what} in {period}",
        source=f"{clause.id}: {clause.source}" if clause is not None else None,
        scope=cap.scope,
        count=cap.count,
        limit=cap.limit,
        local_days=cap.local_days,
        rolling_seconds=cap.rolling_hours * 3600.0 if cap.rolling_hours is not None else None,
        occasions=cap.count is Counted.OCCASIONS,
    )


_cache: dict[tuple[int, int], CompiledStrategy] = {}


def compile_strategy(
    strategy: Strategy, profile: GuardrailProfile, *, portfolio_profile: str | None = None
) -> CompiledStrategy:
    """Compile once per (document, profile) object pair; cheap to call repeatedly.

    Raises `ProfileMismatch` unless `profile` is the strategy's own, its portfolio's
    (`portfolio_profile`, when the caller decides for a portfolio), or one that tightens
    either (`guardrails.may_decide_under`)."""
    if profile.name != strategy.profile and not may_decide_under(
        profile, strategy.profile, portfolio_profile
    ):
        allowed = " or ".join(
            repr(n) for n in dict.fromkeys((strategy.profile, portfolio_profile)) if n
        )
        raise ProfileMismatch(
            f"strategy {strategy.name!r} is written for profile {strategy.profile!r} and may"
            f" be decided under {allowed} or a profile that tightens it, not {profile.name!r}",
            "profile",
        )
    key = (id(strategy), id(profile))
    hit = _cache.get(key)
    if hit is not None and hit.strategy is strategy and hit.profile is profile:
        return hit
    compiled = CompiledStrategy(
        strategy=strategy,
        profile=profile,
        tiers=tuple(_compile_tier(t, profile, strategy) for t in strategy.tiers),
        allowed_by_prefix=f"strategy {strategy.name} v{strategy.version}",
        lookback=_lookback(strategy, profile),
        tier_cache={},
    )
    if len(_cache) > 256:
        _cache.clear()
    _cache[key] = compiled
    return compiled


def _lookback(strategy: Strategy, profile: GuardrailProfile) -> timedelta:
    """The longest span before an instant that a cap, spacing or reachability rule of any
    tier counts attempts in. A period of n local days starts at most n + 1 days before
    the instant in any zone (UTC-12 to UTC+14, with a DST hour): n + 2 days is safe."""
    days = 1.0
    caps = [pc.cap for pc in profile.caps]
    for tier in strategy.tiers:
        caps.extend(tier.caps)
        days = max(days, tier.debtor_unreachable.days + 2.0)
        for s in tier.spacing:
            days = max(days, s.minutes / 1440.0 + 1.0)
    for cap in caps:
        if cap.local_days is not None:
            days = max(days, cap.local_days + 2.0)
        if cap.rolling_hours is not None:
            days = max(days, cap.rolling_hours / 24.0 + 1.0)
    return timedelta(days=days)


def _day_spans(ct: CompiledTier, ordinal: int, *, guard: bool) -> tuple[MinuteSpan, ...]:
    d = date.fromordinal(ordinal)
    weekday = d.weekday()
    kind = day_kind(ct.holiday_country, ct.holiday_subdivision, ordinal)
    if ct.tier.skip_holidays and kind == "holiday":
        return ()
    source = ct.spans if guard else ct.tier_spans
    # A weekend day made a working day (China's 调休) takes Monday's windows.
    adjusted = kind == "workday_adjusted" and ct.tier.skip_holidays
    spans = source[0] if adjusted else source[weekday]
    hard = ct.tier.hard_preferences
    if not guard or not hard:
        return spans
    if Preference.MONDAY in hard and weekday != 0:
        return ()
    if Preference.AVOID_WEEKEND in hard and kind == "weekend":
        return ()
    if Preference.EARLY_MONTH in hard and d.day > EARLY_MONTH_LAST_DAY:
        return ()
    month_days = monthrange(d.year, d.month)[1]
    if Preference.AVOID_MONTH_END in hard and d.day > month_days - MONTH_END_DAYS:
        return ()
    return spans


def day_intervals(
    ct: CompiledTier, zone_name: str, ordinal: int, guard: bool = True
) -> tuple[Interval, ...]:
    """The tier's contact intervals on one local day of one zone, as instants.

    `guard=False` gives the tier's own windows (without the profile or hard preferences),
    used only to say which of the two refused a time."""
    key = (zone_name, ordinal, guard)
    hit = ct.interval_cache.get(key)
    if hit is None:
        if len(ct.interval_cache) > 50_000:
            ct.interval_cache.clear()
        spans = _day_spans(ct, ordinal, guard=guard)
        hit = tuple(local_interval(zone_name, ordinal, a, b) for a, b in spans)
        ct.interval_cache[key] = hit
    return hit


INSTANT_CACHE_SIZE = 4096


def remember(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    """Store a pure result in a per-instant cache, emptied when it grows past its bound
    (instants move on: yesterday's are never asked again)."""
    if len(cache) >= INSTANT_CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def scope_label(scope: Scope) -> str:
    return "contact point" if scope is Scope.CONTACT_POINT else str(scope)


def counted_label(counted: Counted) -> str:
    if counted is Counted.UNANSWERED:
        return "unanswered attempts"
    if counted is Counted.OCCASIONS:
        return "contact occasions (local days with a contact)"
    return str(counted)
