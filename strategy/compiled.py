"""A strategy document compiled against a guardrail profile, once per process, for fast
decisions.

Compiling folds the profile into each tier: windows are intersected with the profile's
hours, the profile's caps join the tier's (each remembering the clause it enforces),
disclosure is capped per role, and each tier's caps are grouped by period with a table of
the caps each kind of history row counts towards. The engine then only looks things up,
and keeps what it finds for this compiled strategy in its `cache` (`strategy.cache`).

`compile_strategy` finds a compiled strategy in the process's `StrategyCache` by the
document's version key (the caller's, or the document's digest) and the profile.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import timedelta

from strategy.cache import EngineCache
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
from strategy.model import Channel, Disclosure, PartyRole, ProfileMismatch

_ALL_CHANNELS = frozenset(Channel)

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
    index: int  # in CompiledStrategy.tiers, and of its TierCache in the strategy's cache
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


@dataclass(frozen=True, slots=True)
class CompiledStrategy:
    strategy: Strategy
    profile: GuardrailProfile
    tiers: tuple[CompiledTier, ...]
    allowed_by_prefix: str
    # How far back from a decision's instant any rule counts attempts (caps' periods in
    # any zone, spacing, the debtor-unreachable days): older attempts only carry facts.
    lookback: timedelta
    # What the document's content is known by (`StrategyCache`).
    version_key: Hashable
    # The engine's pure results for this compiled strategy (window verdicts, the tier of a
    # case's dates on a day, ...): bounded, never keyed by a case's history.
    cache: EngineCache


def _clip(spans: list[MinuteSpan], lo: int, hi: int) -> list[MinuteSpan]:
    return [(max(a, lo), min(b, hi)) for a, b in spans if min(b, hi) > max(a, lo)]


def _tier_spans(
    tier: Tier, profile: GuardrailProfile
) -> tuple[tuple[tuple[MinuteSpan, ...], ...], tuple[tuple[MinuteSpan, ...], ...]]:
    """Per weekday: the tier's hours within the profile's with the hard preferences
    applied, and the tier's own hours."""
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
    return tuple(spans), tuple(tier_spans)


def _compile_tier(
    index: int, tier: Tier, profile: GuardrailProfile, strategy: Strategy
) -> CompiledTier:
    spans, tier_spans = _tier_spans(tier, profile)
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
    return CompiledTier(
        index=index,
        tier=tier,
        spans=spans,
        tier_spans=tier_spans,
        caps=tuple(caps),
        cap_limits=tuple(c.cap.limit for c in caps),
        cap_scopes=tuple(SCOPE_CODES[c.cap.scope] for c in caps),
        cap_periods=_cap_periods(caps),
        spacing=spacing,
        parties=_party_rules(tier, profile),
        escalations=_escalations(tier, profile),
        unreachable_days=tier.debtor_unreachable.days,
        unreachable_min_attempts=tier.debtor_unreachable.min_attempts,
        days_in_stage_min=tier.days_in_stage.min if tier.days_in_stage is not None else None,
        dpd_min=tier.dpd.min if tier.dpd is not None else None,
        quiet_seconds=tier.quiet_hours_after_conversation * 3600.0,
        quiet_channels=profile.quiet_channels,
        profile_quiet_days=profile.quiet_days_after_conversation,
        holiday_country=strategy.holiday_country,
        holiday_subdivision=strategy.holiday_subdivision,
        allowed_by=(
            f"strategy {strategy.name} v{strategy.version} tier {tier.id}"
            f" under profile {profile.name}"
        ),
    )


def _escalations(tier: Tier, profile: GuardrailProfile) -> tuple[CompiledEscalation, ...]:
    return tuple(
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


def _party_rules(tier: Tier, profile: GuardrailProfile) -> dict[PartyRole, CompiledPartyRule]:
    """The tier's rule per party role (the debtor's alone, in full, when it names none),
    its channels within the tier's and the profile's disclosure ceiling for the role."""
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
    return parties


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


class StrategyCache:
    """Compiled strategies by (version key, profile name): a stored strategy version is
    compiled once per process, whichever request parsed its document.

    The version key names the document's content for good: the caller's (a stored
    version's id; two documents given one key must be equal) or, without one, the
    document's digest (`document_key`). Holds at most `size` compiled strategies, dropping
    the least recently used; each carries its own bounded `EngineCache`."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._compiled: OrderedDict[tuple[Hashable, str], CompiledStrategy] = OrderedDict()

    def __len__(self) -> int:
        return len(self._compiled)

    def clear(self) -> None:
        self._compiled.clear()

    def find(self, key: Hashable, profile_name: str) -> CompiledStrategy | None:
        """The strategy compiled under `key` and `profile_name`, if held (its profile was
        checked when it was compiled); lets a caller skip parsing a stored document."""
        compiled = self._compiled.get((key, profile_name))
        if compiled is not None:
            self._compiled.move_to_end((key, profile_name))
        return compiled

    def get(
        self,
        strategy: Strategy,
        profile: GuardrailProfile,
        *,
        key: Hashable | None = None,
        portfolio_profile: str | None = None,
    ) -> CompiledStrategy:
        """The strategy compiled under `profile`, compiled now if this cache has not.

        Raises `ProfileMismatch` unless `profile` is the strategy's own, its portfolio's
        (`portfolio_profile`, when the caller decides for a portfolio), or one that
        tightens either (`guardrails.may_decide_under`)."""
        check_profile(strategy, profile, portfolio_profile)
        version_key = document_key(strategy) if key is None else key
        slot = (version_key, profile.name)
        compiled = self._compiled.get(slot)
        if compiled is not None and (compiled.profile is profile or compiled.profile == profile):
            self._compiled.move_to_end(slot)
            return compiled
        compiled = _compile(strategy, profile, version_key)
        self._compiled[slot] = compiled
        if len(self._compiled) > self.size:
            self._compiled.popitem(last=False)
        return compiled


def check_profile(
    strategy: Strategy, profile: GuardrailProfile, portfolio_profile: str | None
) -> None:
    """Raise `ProfileMismatch` unless the strategy may be decided under `profile`."""
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


# id of a live document -> (a weak reference to it, its digest): the digest of a document
# object is computed once; an entry leaves with its document, so an id is never reused.
_digests: dict[int, tuple[weakref.ReferenceType[Strategy], str]] = {}


def document_key(strategy: Strategy) -> str:
    """The document's content digest (sha256 of its JSON): its version key when the caller
    gives none."""
    ident = id(strategy)
    hit = _digests.get(ident)
    if hit is not None and hit[0]() is strategy:
        return hit[1]
    digest = "sha256:" + hashlib.sha256(strategy.model_dump_json().encode()).hexdigest()
    _digests[ident] = (weakref.ref(strategy, lambda _: _digests.pop(ident, None)), digest)
    return digest


def _compile(
    strategy: Strategy, profile: GuardrailProfile, version_key: Hashable
) -> CompiledStrategy:
    tiers = tuple(_compile_tier(i, t, profile, strategy) for i, t in enumerate(strategy.tiers))
    return CompiledStrategy(
        strategy=strategy,
        profile=profile,
        tiers=tiers,
        allowed_by_prefix=f"strategy {strategy.name} v{strategy.version}",
        lookback=_lookback(strategy, profile),
        version_key=version_key,
        cache=EngineCache(len(tiers)),
    )


# The process's compiled strategies (the planner, the worker and the API share them).
COMPILED = StrategyCache()


def compile_strategy(
    strategy: Strategy,
    profile: GuardrailProfile,
    *,
    portfolio_profile: str | None = None,
    key: Hashable | None = None,
) -> CompiledStrategy:
    """`COMPILED.get(...)`: the strategy compiled once per (version key, profile name).

    `key` names the document's content (a stored version's id); without it the
    document's digest does. Raises `ProfileMismatch` as `StrategyCache.get` says."""
    return COMPILED.get(strategy, profile, key=key, portfolio_profile=portfolio_profile)


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


def scope_label(scope: Scope) -> str:
    return "contact point" if scope is Scope.CONTACT_POINT else str(scope)


def counted_label(counted: Counted) -> str:
    if counted is Counted.UNANSWERED:
        return "unanswered attempts"
    if counted is Counted.OCCASIONS:
        return "contact occasions (local days with a contact)"
    return str(counted)
