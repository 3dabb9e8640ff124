"""The decision engine: who may be contacted for a case, now, how, and why not.

`decide(case, history, now, strategy, profile)` evaluates every candidate (party x contact
point x channel) against every rule of the case's tier and of the guardrail profile, and
keeps every reason a candidate is refused. Each refusal's `next_allowed` is found by
re-evaluating the whole candidate at the instant its rules name, until all pass (a fixed
point), so a next-allowed time is never a guess.

How the work is shared (bench/decide.py measures it): per decision, the history is indexed
once (`strategy.history`, counting only the attempts inside the strategy's lookback) and the
candidates are built once with the reasons that depend on neither tier nor instant. Per
instant (`_At`), the tier and the case's reasons, the debtor's reachability, each zone
set's window and each zone set's caps over their limit (every cap and group counted in one
pass over the period's attempts, from row tables compiled per tier) are found once and read
by every candidate, all evaluated in one loop; a candidate builds a cap's reason only when
that cap refuses it. Results that depend only on the compiled strategy and the instant
(window verdicts, preference scores, the tier of a case's dates on a local day) are cached
in the compiled strategy, and those that depend only on the instant and zones (a period's
bounds, the lookback's start, the datetimes of the instant and of window ends) here, since
a campaign decides its cases at the same instants; none is keyed by a case or a history.

Written to be compiled by mypyc (setup.py; the Docker image ships it compiled): the
per-decision records (`_Cand`, `_Reason`, `_TierState`, `_At`) are plain classes, which
mypyc builds and reads as C structs; enum members and tables are `Final` module constants;
a model object's attributes are read once each, since every read of a non-compiled object
is a generic attribute lookup.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from strategy.calendar import (
    Interval,
    day_kind,
    day_start,
    from_ts,
    intersect,
    local_date,
    local_interval,
    local_ordinal,
    phone_facts,
    schedule_missing,
    zone,
)
from strategy.compiled import (
    EARLY_MONTH_LAST_DAY,
    LAST_HOUR,
    MONTH_END_DAYS,
    SCOPE_CODES,
    SCOPE_CONTACT_POINT,
    CompiledCap,
    CompiledSpacing,
    CompiledStrategy,
    CompiledTier,
    compile_strategy,
    day_intervals,
    remember,
)
from strategy.decision import (
    AllowedAction,
    Candidate,
    Decision,
    Reason,
    Refusal,
    TaskRequest,
)
from strategy.document import ContactWhen, Counted, Preference, Strategy
from strategy.guardrails import Clause, GuardrailProfile
from strategy.history import HistoryIndex
from strategy.model import (
    CHANNELS_BY_KIND,
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
    ProfileMismatch,
    Validity,
)

HORIZON_DAYS: Final = 120  # how far ahead a next-allowed instant is looked for
MAX_FIXPOINT_STEPS: Final = 24
WINDOW_SEARCH_DAYS: Final = 21
_DAY: Final = 86400.0
_EPS: Final = 0.001

_BLOCKING_FLAGS: Final = {
    CaseFlag.CEASE: "the debtor asked us to cease communication",
    CaseFlag.BANKRUPTCY: "the debtor is in bankruptcy",
    CaseFlag.DECEASED: "the debtor is deceased",
    CaseFlag.DO_NOT_CALL: "the case is marked do-not-call",
    CaseFlag.DISPUTE: "the debt is disputed",
}

_ALL_ROLES: Final = frozenset(PartyRole)
_BAD_VALIDITY: Final = frozenset({Validity.WRONG_NUMBER, Validity.INVALID})
# Enum members as module constants: a compiled module reads a constant directly, where
# `PartyRole.ATTORNEY` is a lookup of the class and of its attribute on every use.
_PHONE: Final = ContactKind.PHONE
_DEBTOR: Final = PartyRole.DEBTOR
_ATTORNEY: Final = PartyRole.ATTORNEY
_THIRD_PARTY: Final = PartyRole.THIRD_PARTY
_SMS: Final = Channel.SMS
_EMAIL: Final = Channel.EMAIL
_OPEN: Final = CaseStatus.OPEN
_FLAG_ATTORNEY: Final = CaseFlag.ATTORNEY
_FLAG_DISPUTE: Final = CaseFlag.DISPUTE
_NO_DISCLOSURE: Final = Disclosure.NONE
_MORNING: Final = Preference.MORNING
_MONDAY: Final = Preference.MONDAY
_EARLY_MONTH: Final = Preference.EARLY_MONTH
_AVOID_MONTH_END: Final = Preference.AVOID_MONTH_END
_AVOID_WEEKEND: Final = Preference.AVOID_WEEKEND
_AVOID_LAST_HOUR: Final = Preference.AVOID_LAST_HOUR
_MONTH_END_SPAN: Final = timedelta(days=MONTH_END_DAYS)
_ATTEMPTS: Final = Counted.ATTEMPTS
_NO_PHONE_FACTS: Final[tuple[tuple[str, ...], bool | None]] = ((), None)
_ALL_CHANNELS: Final = frozenset(Channel)
_GUARD_WINDOW: Final = "guardrail.window"
# Builds a record (a named tuple) from its fields in one C call, without the generated
# `__new__`'s Python frame: the engine builds a dozen per decision.
_new: Final = tuple.__new__

# (party role, knows of the debt, contact kind) -> per channel of the kind, the key of the
# tier's facts for such a candidate: built once, so every decision shares the key objects.
_CHANNEL_KEYS: Final = {
    (role, knows, kind): tuple((ch, (role, knows, ch)) for ch in CHANNELS_BY_KIND[kind])
    for role in PartyRole
    for knows in (False, True)
    for kind in ContactKind
}


class _Reason:
    """An internal reason: a rule's verdict with its next-allowed instant as a timestamp.
    Its public `Reason` is built on first need and kept with it, so a reason the compiled
    strategy keeps (what a tier says of a party role and channel) is converted once."""

    __slots__ = ("message", "next", "public", "rule", "source")

    def __init__(
        self, rule: str, message: str, nxt: float | None = None, source: str | None = None
    ) -> None:
        self.rule = rule
        self.message = message
        self.next = nxt  # this rule alone would pass then
        self.source = source  # the guardrail clause, when the profile imposed it
        self.public: Reason | None = None


class _Cand:
    """One candidate (party x contact point x channel) and what is known of it (a plain
    class: compiled, a C struct built and read without Python calls)."""

    __slots__ = (
        "channel",
        "facts_key",
        "groups",
        "party",
        "point",
        "public",
        "static",
        "zone_key",
        "zones",
    )

    def __init__(
        self,
        party: Party,
        point: ContactPoint,
        channel: Channel,
        zones: tuple[str, ...],
        static: tuple[_Reason, ...],
        zone_key: int,
        facts_key: tuple[PartyRole, bool, Channel],
        groups: tuple[str, str, None],
        public: Candidate,
    ) -> None:
        self.party = party
        self.point = point
        self.channel = channel
        self.zones = zones
        self.static = static
        self.zone_key = zone_key  # the same int for candidates with equal zones
        self.facts_key = facts_key  # (role, knows of the debt, channel)
        # A rule's group by scope code: (contact point id, party id, None for the case).
        self.groups = groups
        self.public = public


class _At:
    """What the rules found at one instant, shared by every candidate evaluated there."""

    __slots__ = ("caps", "exceeded", "periods", "spacing", "state", "unreachable", "windows")

    def __init__(self, state: _TierState) -> None:
        self.state = state
        # (cap index, group or None for the case, zone key) -> the cap's reason or None
        self.caps: dict[tuple[int, str | None, int], _Reason | None] = {}
        # zone key -> the caps over their limit, by group
        self.exceeded: dict[int, _Exceeded] = {}
        self.periods: dict[tuple[int, int], tuple[float, float]] = {}
        self.spacing: dict[tuple[int, str | None], _Reason | None] = {}
        self.windows: dict[int, _WindowVerdict] = {}
        self.unreachable: bool | None = None


# A window verdict at an instant for a zone set: (inside, end of the window or its next
# opening, rule, message, whether the tier's own hours refused it: the profile's hours may
# then refuse it too, which the decision's refusal names).
_WindowVerdict = tuple[bool, float | None, str, str, bool]

# Indices of the caps over their limit: per contact point id, per party id, for the case.
_Exceeded = tuple[dict[str, list[int]], dict[str, list[int]], list[int]]
_NOTHING_EXCEEDED: Final[_Exceeded] = ({}, {}, [])


@dataclass(frozen=True, slots=True)
class _TierFacts:
    reasons: tuple[_Reason, ...]
    needs_unreachable: bool  # the tier contacts this party only if the debtor is unreachable
    guard_unreachable: bool  # the profile says the same
    disclosure: Disclosure
    raised: Disclosure | None  # disclosure once the debtor is unreachable
    cap_ids: frozenset[int]  # indices into the tier's caps that bind this candidate
    zero_caps: tuple[int, ...]  # those with limit 0: they refuse whatever the count
    # (index in the tier, rule, scope code)
    spacing: tuple[tuple[int, CompiledSpacing, int], ...]
    profile_quiet: bool
    # Whether the debtor's reachability matters to this candidate at all.
    reads_unreachable: bool
    reachable_reasons: tuple[_Reason, ...]  # the refusals while the debtor can be reached


class _TierState:
    """The case's tier and the reasons that block the whole case, at one instant (a plain
    class: compiled, a C struct built and read without Python calls)."""

    __slots__ = ("case_reasons", "days_in_stage", "dpd", "ordinal", "tier")

    def __init__(
        self,
        tier: CompiledTier | None,
        dpd: int,
        days_in_stage: int | None,
        case_reasons: tuple[_Reason, ...],
        ordinal: int,
    ) -> None:
        self.ordinal = ordinal  # the instant's local day in the strategy's home zone
        self.tier = tier
        self.dpd = dpd
        self.days_in_stage = days_in_stage
        self.case_reasons = case_reasons


def decide(
    case: Case,
    history: History,
    now: datetime,
    strategy: Strategy | CompiledStrategy,
    profile: GuardrailProfile | None = None,
    *,
    portfolio_profile: str | None = None,
) -> Decision:
    """The engine's answer for `case` at the instant `now` (timezone-aware).

    Raises `ProfileMismatch` when `profile` is not one the strategy may be decided under
    (its own, `portfolio_profile`, or one tightening either), and `UnknownReference` when
    an attempt names a party or contact point the case does not hold."""
    tz = now.tzinfo
    # A ZoneInfo or a fixed offset always gives an offset: only another tzinfo is asked.
    if tz is None or (
        type(tz) is not ZoneInfo and type(tz) is not timezone and now.utcoffset() is None
    ):
        raise ValueError("now must be timezone-aware")
    if isinstance(strategy, CompiledStrategy):
        compiled = strategy
        if profile is not None and profile is not compiled.profile:
            raise ProfileMismatch(
                f"the strategy was compiled under profile {compiled.profile.name!r},"
                f" not {profile.name!r}",
                "profile",
            )
    else:
        if profile is None:
            raise ValueError("a profile is needed with an uncompiled strategy")
        compiled = compile_strategy(strategy, profile, portfolio_profile=portfolio_profile)
    # A planner decides its cases at one `now`: the instant's timestamp (a zone lookup and
    # a datetime subtraction) is kept for the datetime object last seen (immutable).
    last = _LAST_NOW[0]
    if last[0] is now:
        t = last[1]
    else:
        t = now.timestamp()
        _LAST_NOW[0] = (now, t)
    return _Evaluator(case, history, compiled, now, t).decide(now, t)


# (the last parties tuple decide was given, its roles by party id, each contact point's
# party id), replaced as one tuple: a planner decides one case at several instants in a
# row. The tuple and its frozen parties are immutable, so the maps are its own.
_LAST_PARTIES: Final[list[tuple[object, dict[str, PartyRole], dict[str, str]]]] = [(None, {}, {})]


def _party_maps(parties: tuple[Party, ...]) -> tuple[dict[str, PartyRole], dict[str, str]]:
    """Each party's role, and each contact point's party (an attempt must name a pair
    the case holds)."""
    last = _LAST_PARTIES[0]
    if last[0] is parties:
        return last[1], last[2]
    roles: dict[str, PartyRole] = {}
    owners: dict[str, str] = {}
    for p in parties:
        party_id = p.id
        roles[party_id] = p.role
        for cp in p.contact_points:
            owners[cp.id] = party_id
    _LAST_PARTIES[0] = (parties, roles, owners)
    return roles, owners


# (the last `now` decide was given, its timestamp), replaced as one tuple.
_LAST_NOW: Final[list[tuple[datetime | None, float]]] = [(None, 0.0)]


class _Evaluator:
    def __init__(
        self, case: Case, history: History, cs: CompiledStrategy, now: datetime, t: float
    ) -> None:
        self.case = case
        self.cs = cs
        self.strategy = cs.strategy
        self.profile = cs.profile
        self.home_zone = cs.strategy.timezone
        roles, owners = _party_maps(case.parties)
        # The earliest instant any rule looks back to, in UTC (as stored instants are).
        lookback = cs.lookback
        since = _SINCE.get((t, lookback))
        if since is None:
            since = remember(_SINCE, (t, lookback), from_ts(t) - lookback)
        self.idx = HistoryIndex(history, roles, since, owners)
        self.payments = sorted(history.payments) if history.payments else []
        self.represented = _FLAG_ATTORNEY in case.flags
        # Per contact point: its candidate zones and where they came from (Decision.extra).
        self.point_zones: dict[str, list[str]] = {}
        self.zone_sources: dict[str, str] = {}
        # The debtors and whether any of their contact points can be used (on first need).
        self.debtors: list[Party] | None = None
        self.debtor_usable = False
        self.candidates: list[_Cand] = self._candidates()
        self._at_memo: dict[float, _At] = {}
        self._dt_memo: dict[float, datetime] = {}

    # --- facts that do not depend on time --------------------------------------------
    def _candidates(self) -> list[_Cand]:
        out: list[_Cand] = []
        home = self.home_zone
        zone_keys: dict[tuple[str, ...], int] = {}
        consent_required = self.profile.consent_required
        wrong_numbers = self.idx.wrong_numbers
        # The once-per-third-party rule, where the profile has it (15 USC 1692b(3)).
        once_open = self.idx.callback_open if self.profile.third_party_once else None
        point_zones, zone_sources = self.point_zones, self.zone_sources
        # Each attribute of a party or contact point is read once (compiled, every read of
        # a model object is a generic attribute lookup).
        for party in self.case.parties:
            party_static = self._party_reasons(party)
            points = party.contact_points
            role, knows, party_id = party.role, party.knows_of_debt, party.id
            party_zone = party.timezone
            # The number's candidate zones and whether it takes SMS, once per phone.
            kinds: list[ContactKind] = []
            facts: list[tuple[tuple[str, ...], bool | None]] = []
            for cp in points:
                kind = cp.kind
                kinds.append(kind)
                if kind is not _PHONE:
                    facts.append(_NO_PHONE_FACTS)
                else:
                    stored = cp.zones
                    facts.append(phone_facts(cp.value) if stored is None else (stored, cp.mobile))
            phone_zones: tuple[str, ...] | None = None
            for i in range(len(points)):
                cp, kind = points[i], kinds[i]
                derived, derived_mobile = facts[i]
                cp_id = cp.id
                cp_zone = cp.timezone
                zones: tuple[str, ...]
                if cp_zone:
                    zones, source = (cp_zone,), "contact point"
                elif party_zone:
                    zones, source = (party_zone,), "party"
                elif kind is _PHONE and derived:
                    zones, source = derived, "derived from the number"
                else:
                    if phone_zones is None:
                        phone_zones = _phone_zones(points, kinds, facts)
                    if phone_zones:
                        zones, source = phone_zones, "derived from the party's phones"
                    else:
                        zones, source = (home,), "portfolio default"
                mobile = cp.mobile
                if kind is _PHONE and mobile is None:
                    mobile = derived_mobile
                point_zones[cp_id] = list(zones)
                zone_sources[cp_id] = source
                zone_key = zone_keys.get(zones)
                if zone_key is None:
                    zone_key = zone_keys[zones] = len(zone_keys)
                point_static = (
                    party_static + self._point_reasons(cp)
                    if cp.validity in _BAD_VALIDITY or cp_id in wrong_numbers
                    else party_static
                )
                # Most points have no do-not-call, opt-out, consent or landline reason.
                plain = (
                    not cp.do_not_call
                    and not cp.opted_out
                    and not consent_required
                    and mobile is not False
                )
                groups = (cp_id, party_id, None)
                once = (
                    once_open is not None
                    and role is _THIRD_PARTY
                    and party_id in self.idx.third_party_contacted
                )
                for channel, key in _CHANNEL_KEYS[role, knows, kind]:
                    static = (
                        point_static
                        if plain
                        else point_static + self._channel_reasons(cp, channel, mobile)
                    )
                    if once:
                        static = static + self._third_party_once(party_id, cp_id, channel)
                    public: Candidate = _new(Candidate, (party_id, role, cp_id, channel))
                    out.append(
                        _Cand(party, cp, channel, zones, static, zone_key, key, groups, public)
                    )
        return out

    # --- the decision --------------------------------------------------------------------
    def decide(self, now: datetime, t: float) -> Decision:
        at = self._at(t)
        state = at.state
        allowed: list[AllowedAction] = []
        refused: list[Refusal] = []
        candidates = self.candidates
        verdicts = self._evaluate(candidates, t, at, True)
        for i in range(len(candidates)):
            cand = candidates[i]
            reasons, disclosure, window_end = verdicts[i]
            if not reasons:
                allowed.append(self._allowed(cand, state, t, disclosure, window_end))
            else:
                nxt = self._next_allowed(cand, t, reasons)
                refused.append(
                    _new(
                        Refusal,
                        (
                            cand.public,
                            _publics(reasons),
                            self._from_ts(nxt) if nxt is not None else None,
                            disclosure,
                        ),
                    )
                )
        if len(allowed) > 1:
            allowed.sort(key=_allowed_order)
        tier = state.tier.tier if state.tier else None
        guidance = tier.guidance if tier else ()
        promise = self._promise_state(t)
        if promise and promise[0] == "broken":
            guidance = (*guidance, f"promise to pay of {promise[1]} was broken: collection resumes")
        extra: dict[str, Any] = {
            "days_in_stage": state.days_in_stage,
            "promise": promise[0] if promise else None,
            "zones": self.point_zones,
            "zone_sources": self.zone_sources,
        }
        if at.unreachable and state.tier is not None:
            # Third parties were weighed with the debtor unreachable: say why.
            extra["debtor_unreachable"] = self._unreachable_why(state.tier, t)
        return _decision(
            self.case.id,
            now,
            self.strategy.name,
            self.strategy.version,
            self.profile.name,
            tier.id if tier else None,
            state.dpd,
            tuple(allowed),
            tuple(refused),
            _publics(state.case_reasons),
            self._tasks(t, state),
            guidance,
            extra,
            _warnings(state.tier, state.ordinal),
        )

    def _allowed(
        self, cand: _Cand, state: _TierState, t: float, disclosure: Disclosure, window_end: float
    ) -> AllowedAction:
        ct = state.tier
        assert ct is not None
        score, notes = self._preference(ct, cand.zones[0], t)
        key = (cand.channel, cand.party.role, disclosure)
        how = ct.template_keys.get(key)
        if how is None:
            how = ct.template_keys[key] = self._how(ct, *key)
        template_key, voicemail_disclosure, append_opt_out = how
        action: AllowedAction = _new(
            AllowedAction,
            (
                cand.public,
                disclosure,
                template_key,
                _instant(t),
                _instant(window_end),
                ct.allowed_by,
                cand.zones,
                voicemail_disclosure,
                append_opt_out,
                score,
                notes,
            ),
        )
        return action

    def _how(
        self, ct: CompiledTier, channel: Channel, role: PartyRole, disclosure: Disclosure
    ) -> tuple[str, Disclosure, bool]:
        """An allowed action's template key, voicemail disclosure and whether its text
        must carry the opt-out line: pure in the tier and (channel, role, disclosure)."""
        tier = ct.tier
        base = tier.templates.get(channel, tier.id)
        profile = self.profile
        return (
            f"{base}.{channel}.{role}.{disclosure}",
            _lowest(disclosure, profile.voicemail_max_disclosure),
            channel in profile.opt_out_text_required,
        )

    # --- case-level state at an instant ------------------------------------------------
    def _at(self, t: float) -> _At:
        hit = self._at_memo.get(t)
        if hit is None:
            if len(self._at_memo) > 64:
                self._at_memo.clear()
            hit = self._at_memo[t] = _At(self._tier_state(t))
        return hit

    def _tier_state(self, t: float) -> _TierState:
        case = self.case
        ordinal = local_ordinal(t, self.home_zone)
        # The tier depends on the case's dates and stage and the local day only: cached in
        # the compiled strategy, shared by the many cases of a portfolio due the same day.
        key = (ordinal, case.due_date, case.stage, case.stage_started_on)
        hit = self.cs.tier_cache.get(key)
        if hit is None:
            hit = remember(self.cs.tier_cache, key, self._choose_tier(date.fromordinal(ordinal)))
        chosen, dpd, days_in_stage = hit
        if (
            case.status is _OPEN
            and not case.flags
            and not self.idx.disputes
            and self.idx.latest_promise is None
            and chosen is not None
            and (case.amount if case.balance is None else case.balance) > 0
        ):
            return _TierState(chosen, dpd, days_in_stage, (), ordinal)
        today = date.fromordinal(ordinal)
        reasons = self._case_reasons(t, today, dpd, days_in_stage, chosen)
        return _TierState(chosen, dpd, days_in_stage, reasons, ordinal)

    def _choose_tier(self, today: date) -> tuple[CompiledTier | None, int, int | None]:
        case = self.case
        dpd = (today - case.due_date).days
        days_in_stage = (today - case.stage_started_on).days if case.stage_started_on else None
        for ct in self.cs.tiers:
            tier = ct.tier
            if tier.stage is not None and tier.stage != case.stage:
                continue
            if tier.dpd is not None and not tier.dpd.contains(dpd):
                continue
            if tier.days_in_stage is not None and (
                days_in_stage is None or not tier.days_in_stage.contains(days_in_stage)
            ):
                continue
            return ct, dpd, days_in_stage
        return None, dpd, days_in_stage

    def _case_reasons(
        self, t: float, today: date, dpd: int, days_in_stage: int | None, tier: CompiledTier | None
    ) -> tuple[_Reason, ...]:
        case = self.case
        out: list[_Reason] = []
        if case.status is not _OPEN:
            out.append(_Reason("case.status", f"the case is {case.status}"))
        elif case.outstanding <= 0:
            out.append(_Reason("case.settled", "nothing is outstanding"))
        for flag, why in _BLOCKING_FLAGS.items():
            if flag in case.flags:
                out.append(_Reason(f"flag.{flag}", why))
        if _FLAG_DISPUTE not in case.flags and self.idx.disputes:
            resolved = case.dispute_resolved_at.timestamp() if case.dispute_resolved_at else None
            if resolved is None or self.idx.disputes[-1] > resolved:
                out.append(_Reason("flag.dispute", "the debtor disputed the debt on a call"))
        promise = self._promise_state(t)
        if promise and promise[0] == "pending":
            resume = promise[2]
            out.append(
                _Reason(
                    "promise.pending",
                    f"promise to pay {promise[1]}: collection waits until the grace period ends",
                    resume,
                    None,
                )
            )
        if tier is None:
            out.append(
                _Reason(
                    "tier.none",
                    self._no_tier_message(dpd, days_in_stage),
                    self._next_tier(today),
                    None,
                )
            )
        return tuple(out)

    def _no_tier_message(self, dpd: int, days_in_stage: int | None) -> str:
        stage = (
            f", stage {self.case.stage} day {days_in_stage}" if days_in_stage is not None else ""
        )
        return f"no tier of {self.strategy.name} matches {dpd} days past due{stage}"

    def _next_tier(self, today: date) -> float | None:
        """The next local day on which some tier will match, if the case just waits."""
        for ahead in range(1, HORIZON_DAYS):
            day = today + timedelta(days=ahead)
            dpd = (day - self.case.due_date).days
            dis = (day - self.case.stage_started_on).days if self.case.stage_started_on else None
            for ct in self.cs.tiers:
                tier = ct.tier
                if tier.stage is not None and tier.stage != self.case.stage:
                    continue
                if tier.dpd is not None and not tier.dpd.contains(dpd):
                    continue
                if tier.days_in_stage is not None and (
                    dis is None or not tier.days_in_stage.contains(dis)
                ):
                    continue
                return day_start(self.home_zone, day.toordinal())
        return None

    def _promise_state(self, t: float) -> tuple[str, str, float] | None:
        """('pending' | 'kept' | 'broken', description, instant collection resumes)."""
        latest = self.idx.latest_promise
        if latest is None or latest[0] > t:
            return None
        made, attempt = latest
        assert attempt.promise_date is not None
        amount = attempt.promise_amount
        paid = sum((amt for ts, amt in self.payments if ts.timestamp() >= made), start=Decimal(0))
        sum_text = f"{amount} {self.case.currency} " if amount is not None else ""
        what = f"{sum_text}by {attempt.promise_date}"
        if (amount is not None and paid >= amount) or (amount is None and paid > 0):
            return ("kept", what, made)
        resume_day = attempt.promise_date + timedelta(days=self.strategy.promise_grace_days + 1)
        resume = day_start(self.home_zone, resume_day.toordinal())
        return ("pending", what, resume) if t < resume else ("broken", what, resume)

    # --- one candidate at an instant -----------------------------------------------------
    def _party_reasons(self, party: Party) -> tuple[_Reason, ...]:
        """Reasons that depend on the party only (neither the tier nor the instant)."""
        role = party.role
        idx = self.idx
        represented = self.represented
        if (
            not represented
            and role is not _ATTORNEY
            and not party.refused_contact
            and (role is not _THIRD_PARTY or party.id not in idx.refused_parties)
        ):
            return ()
        out: list[_Reason] = []
        profile = self.profile
        if represented and role is not _ATTORNEY:
            out.append(
                _Reason(
                    "attorney.represented",
                    "the debtor is represented by an attorney: contact the attorney only",
                    None,
                    _source(profile.attorney_clause),
                )
            )
        if role is _ATTORNEY and not represented:
            out.append(_Reason("party.attorney_not_of_record", "no attorney is on record"))
        if party.refused_contact:
            out.append(_Reason("party.refused", "this person refused further contact"))
        elif role is _THIRD_PARTY and party.id in idx.refused_parties and profile.refusal_is_final:
            out.append(
                _Reason(
                    "party.refused",
                    "this person refused further contact on an earlier call",
                    None,
                    _source(profile.refusal_clause),
                )
            )
        return tuple(out)

    def _third_party_once(self, party_id: str, cp_id: str, channel: Channel) -> tuple[_Reason, ...]:
        """15 USC 1692b(3): a third party is communicated with once "unless requested to do
        so by such person". A request allows the one call asked for: on the contact point
        and channel it was made on, once; the next communication uses it up."""
        asked = self.idx.callback_open.get(party_id)
        if asked is not None and asked == (cp_id, channel):
            return ()
        message = (
            "this third party was already contacted and did not ask to be contacted again"
            if asked is None
            else f"this third party asked to be called back on {asked[0]} by {asked[1]}, not here"
        )
        return (
            _Reason(
                "guardrail.third_party_once",
                message,
                None,
                _source(self.profile.third_party_once_clause),
            ),
        )

    def _point_reasons(self, cp: ContactPoint) -> tuple[_Reason, ...]:
        """Reasons that depend on the contact point only."""
        if cp.validity in _BAD_VALIDITY:
            return (_Reason("contact.invalid", f"the contact point is marked {cp.validity}"),)
        if cp.id in self.idx.wrong_numbers:
            return (_Reason("contact.wrong_number", "the last call reached a wrong number"),)
        return ()

    def _channel_reasons(
        self, cp: ContactPoint, channel: Channel, mobile: bool | None
    ) -> tuple[_Reason, ...]:
        """Reasons that depend on the contact point and the channel."""
        consent_required = self.profile.consent_required
        if (
            not cp.do_not_call
            and not cp.opted_out
            and not consent_required
            and (mobile is not False or channel is not _SMS)
        ):
            return ()
        out: list[_Reason] = []
        if cp.do_not_call and channel is not _EMAIL:
            out.append(_Reason("contact.do_not_call", "the number is on a do-not-call list"))
        if channel in cp.opted_out:
            out.append(_Reason("optout.channel", f"opted out of {channel} on this contact point"))
        if channel in consent_required and channel not in cp.consent:
            out.append(
                _Reason(
                    "guardrail.consent",
                    f"no prior express consent for {channel} on this number",
                    None,
                    _source(self.profile.consent_clause),
                )
            )
        if channel is _SMS and mobile is False:
            out.append(_Reason("channel.sms_landline", "the number cannot receive SMS"))
        return tuple(out)

    def _tier_facts(self, ct: CompiledTier, cand: _Cand) -> _TierFacts:
        """What a tier says of a candidate, whatever the instant (memoised per tier)."""
        party = cand.party
        key = (party.role, party.knows_of_debt, cand.channel)
        hit: _TierFacts | None = ct.facts_cache.get(key)
        if hit is not None:
            return hit
        role = party.role
        channel = cand.channel
        reasons: list[_Reason] = []
        prule = ct.parties.get(role)
        contact = ContactWhen.ALWAYS
        disclosure = Disclosure.NONE
        raise_if_unreachable: Disclosure | None = None
        if role is _ATTORNEY:
            disclosure = Disclosure.FULL
            channel_ok = channel in ct.tier.channels
        elif prule is None:
            reasons.append(
                _Reason("party.not_in_tier", f"tier {ct.tier.id} does not contact a {role}")
            )
            channel_ok = True
        else:
            rule = prule.rule
            contact = rule.contact
            channel_ok = channel in prule.channels
            if contact is ContactWhen.NEVER:
                reasons.append(
                    _Reason("party.tier_forbids", f"tier {ct.tier.id} never contacts a {role}")
                )
            elif contact is ContactWhen.IF_KNOWS_OF_DEBT and not party.knows_of_debt:
                reasons.append(
                    _Reason("party.unaware_of_debt", "this contact does not know of the debt")
                )
            disclosure = rule.disclosure
            if rule.disclosure_if_knows_debt is not None and party.knows_of_debt:
                disclosure = _highest(disclosure, rule.disclosure_if_knows_debt)
            raise_if_unreachable = rule.disclosure_if_debtor_unreachable
        if not channel_ok:
            reasons.append(
                _Reason("channel.not_in_tier", f"the tier does not use {channel} for a {role}")
            )
        ceiling = prule.max_disclosure if prule is not None else Disclosure.FULL
        cap_ids = [i for i, c in enumerate(ct.caps) if channel in c.channels and role in c.roles]
        needs_unreachable = contact is ContactWhen.WHEN_DEBTOR_UNREACHABLE
        guard_unreachable = (
            role is _THIRD_PARTY and self.profile.third_party_only_when_debtor_unreachable
        )
        raised = (
            Disclosure.lowest(_highest(disclosure, raise_if_unreachable), ceiling)
            if raise_if_unreachable
            else None
        )
        facts = _TierFacts(
            reasons=tuple(reasons),
            needs_unreachable=needs_unreachable,
            guard_unreachable=guard_unreachable,
            disclosure=Disclosure.lowest(disclosure, ceiling),
            raised=raised,
            cap_ids=frozenset(cap_ids),
            zero_caps=tuple(i for i in cap_ids if ct.cap_limits[i] <= 0),
            spacing=tuple(
                (i, sp, SCOPE_CODES[sp.spacing.scope])
                for i, sp in enumerate(ct.spacing)
                if channel in sp.channels
            ),
            profile_quiet=ct.profile_quiet_days > 0 and channel in ct.quiet_channels,
            reads_unreachable=needs_unreachable or guard_unreachable or raised is not None,
            reachable_reasons=self._reachable_reasons(role, needs_unreachable, guard_unreachable),
        )
        ct.facts_cache[key] = facts
        return facts

    def _reachable_reasons(
        self, role: PartyRole, needs_unreachable: bool, guard_unreachable: bool
    ) -> tuple[_Reason, ...]:
        out: list[_Reason] = []
        if needs_unreachable:
            out.append(
                _Reason(
                    "party.debtor_reachable",
                    f"a {role} is contacted only when the debtor cannot be reached",
                    None,
                    None,
                )
            )
        if guard_unreachable:
            out.append(
                _Reason(
                    "guardrail.third_party",
                    "third parties only when the debtor cannot be reached",
                    None,
                    _source(self.profile.third_party_clause),
                )
            )
        return tuple(out)

    def _evaluate(
        self, cands: Sequence[_Cand], t: float, at: _At | None = None, explain: bool = False
    ) -> list[tuple[list[_Reason], Disclosure, float]]:
        """Every candidate's reasons to refuse it at t (none: allowed), its disclosure and
        the end of its window. One loop over the candidates: what they share at t (the
        tier, the case's reasons, each zone set's window and caps over their limit, the
        spacing verdicts) is looked up once for all of them. `explain`: the decision's
        own instant, whose refusals also name the reasons that move no next-allowed."""
        if at is None:
            at = self._at(t)
        state = at.state
        ct = state.tier
        case_reasons = state.case_reasons
        if ct is None:
            return [([*case_reasons, *c.static], _NO_DISCLOSURE, t) for c in cands]
        facts_cache = ct.facts_cache
        windows = at.windows
        exceeded_by_zone = at.exceeded
        spacing_verdicts = at.spacing
        rpc_by_party = self.idx.rpc_by_party
        out: list[tuple[list[_Reason], Disclosure, float]] = []
        for cand in cands:
            reasons: list[_Reason] = (
                [*case_reasons, *cand.static] if case_reasons else list(cand.static)
            )
            facts: _TierFacts | None = facts_cache.get(cand.facts_key)
            if facts is None:
                facts = self._tier_facts(ct, cand)
            if facts.reasons:
                reasons.extend(facts.reasons)
            disclosure = facts.disclosure
            if facts.reads_unreachable:
                unreachable = at.unreachable
                if unreachable is None:
                    unreachable = at.unreachable = self._debtor_unreachable(ct, t)
                if not unreachable:
                    reasons.extend(facts.reachable_reasons)
                elif facts.raised is not None:
                    disclosure = facts.raised

            # When: the local window in every candidate zone.
            zone_key = cand.zone_key
            window = windows.get(zone_key)
            if window is None:
                key = (cand.zones, t)
                window = ct.window_cache.get(key)
                if window is None:
                    window = remember(ct.window_cache, key, self._window(ct, cand.zones, t))
                windows[zone_key] = window
            inside, end_or_next, wrule, message, tier_refused = window
            window_end = t
            if inside:
                window_end = end_or_next if end_or_next is not None else t
            else:
                source = _source(self.profile.window_clause) if wrule == _GUARD_WINDOW else None
                reasons.append(_Reason(wrule, message, end_or_next, source))
                # Only the decision's own refusals need it: the law's hours open no later
                # than the tier's, so it never moves a next-allowed instant.
                if tier_refused and explain:
                    guard = self._guard_window(cand.zones, t)
                    if guard is not None:
                        reasons.append(
                            _Reason(
                                _GUARD_WINDOW,
                                guard[0],
                                guard[1],
                                _source(self.profile.window_clause),
                            )
                        )

            # How often: caps, spacing, quiet periods. Every cap and group is counted in
            # one pass per period and instant; a candidate reads only the caps over their
            # limit.
            exceeded = exceeded_by_zone.get(zone_key)
            if exceeded is None:
                exceeded = exceeded_by_zone[zone_key] = self._exceeded(
                    at, ct, cand.zones, zone_key, t
                )
            by_point, by_party, case = exceeded
            if by_point or by_party or case or facts.zero_caps:
                cap_ids = facts.cap_ids
                groups = cand.groups
                on_point = by_point.get(groups[0])
                on_party = by_party.get(groups[1])
                if (
                    facts.zero_caps
                    or (case and not cap_ids.isdisjoint(case))
                    or (on_point and not cap_ids.isdisjoint(on_point))
                    or (on_party and not cap_ids.isdisjoint(on_party))
                ):
                    self._cap_reasons(at, ct, cand, facts, exceeded, t, reasons)
            if facts.spacing:
                groups = cand.groups
                for i, sp, scope in facts.spacing:
                    group = groups[scope]
                    vkey = (i, group)
                    if vkey in spacing_verdicts:
                        r = spacing_verdicts[vkey]
                    else:
                        r = spacing_verdicts[vkey] = self._spacing(
                            sp, _ALL_ROLES if group is None else group, t
                        )
                    if r is not None:
                        reasons.append(r)
            if rpc_by_party:
                self._quiet(ct, cand, facts, t, reasons)
            out.append((reasons, disclosure, window_end))
        return out

    def _quiet(
        self, ct: CompiledTier, cand: _Cand, facts: _TierFacts, t: float, reasons: list[_Reason]
    ) -> None:
        """The quiet periods after a right-party conversation: the tier's and the profile's."""
        last_rpc = self.idx.last_rpc(cand.party.id, t)
        if last_rpc is None:
            return
        if ct.quiet_seconds and t - last_rpc < ct.quiet_seconds:
            reasons.append(
                _Reason(
                    "quiet.after_conversation",
                    f"quiet for {ct.tier.quiet_hours_after_conversation:g} h"
                    " after a right-party conversation",
                    last_rpc + ct.quiet_seconds,
                    None,
                )
            )
        if facts.profile_quiet:
            # 12 CFR 1006.14(b)(2)(ii): seven consecutive days, "the date of the telephone
            # conversation is the first day": calendar days in the person's local time (in
            # every candidate zone, the latest end), as the 7-in-7 cap counts them.
            days = ct.profile_quiet_days
            end = _quiet_end(cand.zones, last_rpc, days)
            if t < end:
                reasons.append(
                    _Reason(
                        "guardrail.quiet_after_conversation",
                        f"no {cand.channel} within {days} days after a conversation,"
                        " its day counted as the first",
                        end,
                        _source(self.profile.quiet_clause),
                    )
                )

    def _exceeded(
        self, at: _At, ct: CompiledTier, zones: tuple[str, ...], zone_key: int, t: float
    ) -> _Exceeded:
        """Every cap over its limit at t for candidates in these zones, by group: the
        contact points', the parties' and the case's. One pass over each period's attempts
        counts every cap and group."""
        idx = self.idx
        ts = idx.ts
        if not ts:
            return _NOTHING_EXCEEDED
        chans, roles, convs = idx.channels, idx.roles, idx.convs
        cps, parties = idx.cps, idx.parties
        counts: dict[tuple[int, str | None], int] = {}
        for period in ct.cap_periods:
            if period.local_days is not None:
                start, end = self._period(at, zones, zone_key, period.local_days, t)
            else:
                assert period.rolling_seconds is not None
                start, end = t - period.rolling_seconds + _EPS, t + _EPS
            lo = bisect_left(ts, start)
            hi = bisect_left(ts, end, lo)
            row_caps = period.row_caps
            for i in range(lo, hi):
                hits = row_caps.get((chans[i], roles[i], convs[i]))
                if hits is None:
                    continue
                groups = (cps[i], parties[i], None)  # by scope code
                for cap_index, scope in hits:
                    k = (cap_index, groups[scope])
                    counts[k] = counts.get(k, 0) + 1
        limits, scopes = ct.cap_limits, ct.cap_scopes
        by_point: dict[str, list[int]] = {}
        by_party: dict[str, list[int]] = {}
        case: list[int] = []
        for (i, g), n in counts.items():
            if n >= limits[i]:
                if g is None:
                    case.append(i)
                else:
                    (by_point if scopes[i] == SCOPE_CONTACT_POINT else by_party).setdefault(
                        g, []
                    ).append(i)
        return by_point, by_party, case

    def _cap_reasons(
        self,
        at: _At,
        ct: CompiledTier,
        cand: _Cand,
        facts: _TierFacts,
        exceeded: _Exceeded,
        t: float,
        reasons: list[_Reason],
    ) -> None:
        """Append, in the tier's cap order, the reasons of the caps that refuse `cand`."""
        cp_id, party_id = cand.point.id, cand.party.id
        cap_ids = facts.cap_ids
        by_point, by_party, case = exceeded
        hits: list[tuple[int, str | None]] = []
        over = by_point.get(cp_id)
        if over:
            hits += [(i, cp_id) for i in over if i in cap_ids]
        over = by_party.get(party_id)
        if over:
            hits += [(i, party_id) for i in over if i in cap_ids]
        if case:
            hits += [(i, None) for i in case if i in cap_ids]
        if facts.zero_caps:
            scopes, groups = ct.cap_scopes, cand.groups
            hits.extend((i, groups[scopes[i]]) for i in facts.zero_caps)
        if len(hits) > 1:
            hits.sort(key=_first)
        verdicts = at.caps
        zone_key = cand.zone_key
        for i, group in hits:
            key = (i, group, zone_key)
            if key in verdicts:
                r = verdicts[key]
            else:
                ccap = ct.caps[i]
                r = verdicts[key] = self._cap(
                    at, ccap, ccap.roles if group is None else group, cand.zones, zone_key, t
                )
            if r is not None:
                reasons.append(r)

    def _period(
        self, at: _At, zones: tuple[str, ...], zone_key: int, days: int, t: float
    ) -> tuple[float, float]:
        """[start, end) of `days` local days ending with today, over all candidate zones."""
        key = (zone_key, days)
        hit = at.periods.get(key)
        if hit is None:
            hit = at.periods[key] = _period(zones, days, t)
        return hit

    def _spacing(
        self, sp: CompiledSpacing, group: str | frozenset[PartyRole], t: float
    ) -> _Reason | None:
        last = self.idx.last_before(t, sp.scope, group, sp.channels)
        if last is None or t - last >= sp.seconds:
            return None
        return _Reason(sp.rule, sp.message, last + sp.seconds)

    def _cap(
        self,
        at: _At,
        ccap: CompiledCap,
        group: str | frozenset[PartyRole],
        zones: tuple[str, ...],
        zone_key: int,
        t: float,
    ) -> _Reason | None:
        """A cap's verdict; the same for every candidate sharing its group and zones."""
        local_days, rolling, limit = ccap.local_days, ccap.rolling_seconds, ccap.limit
        if local_days is not None:
            start, end = self._period(at, zones, zone_key, local_days, t)
            if ccap.occasions:
                return self._occasions(ccap, group, zones, local_days, start, end, t)
        else:
            assert rolling is not None
            start, end = t - rolling + _EPS, t + _EPS
        stamps = self.idx.count(start, end, ccap.scope, group, ccap.channels, ccap.count)
        n = len(stamps)
        verdict: _Reason | None = None
        if n >= limit:
            # The instant enough of the counted attempts have left the period.
            nxt: float | None = None
            if limit > 0:
                oldest = stamps[n - limit]
                if local_days is not None:
                    nxt = max(day_start(z, local_ordinal(oldest, z) + local_days) for z in zones)
                else:
                    assert rolling is not None
                    nxt = oldest + rolling
            verdict = self._cap_reason(ccap, n, nxt)
        return verdict

    def _occasions(
        self,
        ccap: CompiledCap,
        group: str | frozenset[PartyRole],
        zones: tuple[str, ...],
        local_days: int,
        start: float,
        end: float,
        t: float,
    ) -> _Reason | None:
        """An occasions cap's verdict: the local days in the period with a contact on the
        cap's channels are its occasions. A contact on a day that already is one shares it
        (email and phone on one follow-up day); another day is refused once `limit` days
        of the period are occasions. In every possible zone of the candidate, as for any
        cap: it passes again when the oldest of the last `limit` occasion days has left
        the period in each zone that refuses."""
        limit = ccap.limit
        stamps = self.idx.count(start, end, ccap.scope, group, ccap.channels, _ATTEMPTS)
        refused = False
        n = 0
        nxt: float | None = None
        for z in zones:
            today = local_ordinal(t, z)
            first = today - local_days + 1
            seen: set[int] = set()
            for s in stamps:
                day = local_ordinal(s, z)
                if first <= day <= today:
                    seen.add(day)
            if limit > 0 and (today in seen or len(seen) < limit):
                continue
            refused = True
            n = max(n, len(seen))
            if limit > 0:
                days = sorted(seen)
                passes = day_start(z, days[len(days) - limit] + local_days)
                nxt = passes if nxt is None or passes > nxt else nxt
        if not refused:
            return None
        return _Reason(ccap.rule, f"{n} {ccap.message}; today is not one of them", nxt, ccap.source)

    @staticmethod
    def _cap_reason(ccap: CompiledCap, n: int, nxt: float | None) -> _Reason:
        return _Reason(ccap.rule, f"{n} {ccap.message}", nxt, ccap.source)

    def _debtor_unreachable(self, ct: CompiledTier, t: float) -> bool:
        return self._unreachable_why(ct, t) is not None

    def _unreachable_why(self, ct: CompiledTier, t: float) -> str | None:
        """Why the debtor counts as unreachable at t, or None while they can be reached.

        A recorded fact (`Case.recorded_unreachable`, e.g. a skip-trace) holds while
        since <= t < until, unless the debtor was reached since. Otherwise: no usable
        contact point, or at least the tier's number of failed attempts on debtors in its
        local days and no contact made with them there. A failed attempt is one whose
        outcome shows the debtor was not reached (no answer, busy, voicemail, failed, wrong
        number, someone else answering); a right-party conversation or a text or e-mail
        delivered is a contact made (compliance.md, "Always"), never a failed attempt; a
        pending attempt has no outcome yet."""
        debtors = self.debtors
        if debtors is None:
            debtors = self.debtors = [p for p in self.case.parties if p.role is _DEBTOR]
            wrong = self.idx.wrong_numbers
            self.debtor_usable = any(
                _usable(cp) and cp.id not in wrong for p in debtors for cp in p.contact_points
            )
        recorded = self.case.recorded_unreachable
        if recorded is not None:
            since = recorded.since.timestamp()
            # A recorded fact ends early once the debtor is reached after it was recorded.
            if since <= t < recorded.until.timestamp() and not self._reached(debtors, since, t):
                return (
                    f"recorded unreachable since {recorded.since.isoformat()}"
                    f" ({recorded.source}) until {recorded.until.isoformat()}"
                )
        if not self.debtor_usable:
            return "no usable contact point of the debtor"
        start = _period((self.home_zone,), ct.unreachable_days, t)[0]
        if self._reached(debtors, start, t):
            return None
        idx = self.idx
        end = t + _EPS
        # The attempts on a debtor in [start, t] (the case scope, debtors only), less the
        # pending ones: the rest failed (a conversation with them returned above).
        ts = idx.ts
        lo = bisect_left(ts, start)
        tried = idx.roles[lo : bisect_left(ts, end, lo)].count(_DEBTOR)
        pending = idx.debtor_pending
        if pending:
            tried -= bisect_left(pending, end) - bisect_left(pending, start)
        if tried < ct.unreachable_min_attempts:
            return None
        return f"{tried} failed attempts on the debtor in {ct.unreachable_days} local day(s)"

    def _reached(self, debtors: list[Party], start: float, t: float) -> bool:
        """Whether a debtor was reached in [start, t]: a right-party conversation, or a
        text or e-mail delivered to them."""
        idx = self.idx
        if idx.rpc_by_party and any((idx.last_rpc(p.id, t) or -1.0) >= start for p in debtors):
            return True
        delivered = idx.debtor_delivered
        return bool(delivered) and bisect_left(delivered, start) < bisect_left(delivered, t + _EPS)

    def _window(self, ct: CompiledTier, zones: tuple[str, ...], t: float) -> _WindowVerdict:
        """(inside, end of the current window or the next opening, rule, message, whether
        the tier's own hours refused t: the decision then also asks the profile's hours,
        so a night-time refusal names both and a count by legal clause is whole)."""
        end = None
        for z in zones:
            o = local_ordinal(t, z)
            hit = None
            for a, b in day_intervals(ct, z, o):
                if a <= t < b:
                    hit = b
                    break
            if hit is None:
                end = None
                break
            end = hit if end is None or hit < end else end
        if end is not None:
            return True, end, "", "", False
        nxt = self._next_opening(ct, zones, t)
        if len(zones) > 1 and nxt is None:
            return (
                False,
                None,
                "window.no_common_hours",
                (f"no hour is inside the window in all {len(zones)} possible zones"),
                True,
            )
        # Say whether the tier's own hours or the profile's ceiling refused this instant.
        in_tier = all(
            any(a <= t < b for a, b in day_intervals(ct, z, local_ordinal(t, z), False))
            for z in zones
        )
        where = ", ".join(zones) if len(zones) <= 3 else f"{len(zones)} possible zones"
        if in_tier:
            if ct.tier.hard_preferences:
                return (
                    False,
                    nxt,
                    "window.preference",
                    (
                        f"outside the tier's required times"
                        f" ({', '.join(ct.tier.hard_preferences)}) or the"
                        f" profile's hours {self.profile.window} local ({where})"
                    ),
                    False,
                )
            return (
                False,
                nxt,
                _GUARD_WINDOW,
                f"outside {self.profile.window} local time ({where})",
                False,
            )
        if ct.tier.skip_holidays:
            for z in zones:
                day = local_date(t, z)
                if (
                    day_kind(ct.holiday_country, ct.holiday_subdivision, day.toordinal())
                    == "holiday"
                ):
                    return (
                        False,
                        nxt,
                        "window.holiday",
                        f"{day} is a public holiday ({z})",
                        True,
                    )
        return (
            False,
            nxt,
            "window.local_time",
            f"outside the tier's contact hours ({where})",
            True,
        )

    def _guard_window(self, zones: tuple[str, ...], t: float) -> tuple[str, float | None] | None:
        """The profile's own refusal of t (its hours, every day, in every candidate zone)
        and the next instant those hours are open in all the zones; None inside them."""
        lo, hi = self.profile.window.minutes
        ordinals = [local_ordinal(t, z) for z in zones]
        outside = False
        for i in range(len(zones)):
            a, b = _profile_interval(zones[i], ordinals[i], lo, hi)
            if not a <= t < b:
                outside = True
                break
        if not outside:
            return None
        common: list[Interval] | None = None
        for i in range(len(zones)):
            o = ordinals[i]
            ivs = [_profile_interval(zones[i], d, lo, hi) for d in range(o - 1, o + 3)]
            common = ivs if common is None else intersect(common, ivs)
        nxt = next((max(a, t) for a, b in common or () if b > t), None)
        where = ", ".join(zones) if len(zones) <= 3 else f"{len(zones)} possible zones"
        return f"outside {self.profile.window} local time ({where})", nxt

    def _next_opening(self, ct: CompiledTier, zones: tuple[str, ...], t: float) -> float | None:
        common: list[Interval] | None = None
        for z in zones:
            o = local_ordinal(t, z)
            ivs: list[Interval] = []
            for d in range(o, o + WINDOW_SEARCH_DAYS):
                ivs.extend(day_intervals(ct, z, d))
            common = ivs if common is None else intersect(common, ivs)
            if not common:
                return None
        for a, b in common or ():
            if b > t:
                return max(a, t)
        return None

    def _next_allowed(self, cand: _Cand, t0: float, reasons: list[_Reason]) -> float | None:
        limit = t0 + HORIZON_DAYS * _DAY
        t = t0
        for _ in range(MAX_FIXPOINT_STEPS):
            # A rule that names no instant (an opt-out, the tier's channels) ends the search.
            nxt = -math.inf
            for r in reasons:
                hint = r.next
                if hint is None:
                    return None
                if hint > nxt:
                    nxt = hint
            t = nxt if nxt > t else t + 60.0
            if t > limit:
                return None
            reasons = self._evaluate((cand,), t)[0][0]
            if not reasons:
                return t
        return None

    # --- preferences and escalations -----------------------------------------------------
    def _from_ts(self, ts: float) -> datetime:
        hit = self._dt_memo.get(ts)
        if hit is None:
            hit = self._dt_memo[ts] = from_ts(ts)
        return hit

    def _preference(
        self, ct: CompiledTier, zone_name: str, t: float
    ) -> tuple[int, tuple[str, ...]]:
        """Soft preferences from the source (mornings, Mondays, early in the month; not
        month-end, weekends or the last hour of the working day) as a score, not a ban."""
        key = (zone_name, t)
        hit = ct.preference_cache.get(key)
        if hit is None:
            hit = remember(ct.preference_cache, key, self._preference_uncached(ct, zone_name, t))
        return hit

    def _preference_uncached(
        self, ct: CompiledTier, zone_name: str, t: float
    ) -> tuple[int, tuple[str, ...]]:
        prefs = ct.tier.preferences
        if not prefs:
            return 0, ()
        local = datetime.fromtimestamp(t, zone(zone_name))
        notes: list[tuple[int, str]] = []
        for p in prefs:
            if p is _MORNING:
                if local.hour < 12:
                    notes.append((1, "morning"))
            elif p is _MONDAY:
                if local.weekday() == 0:
                    notes.append((1, "Monday"))
            elif p is _EARLY_MONTH:
                if local.day <= EARLY_MONTH_LAST_DAY:
                    notes.append((1, "early in the month"))
            elif p is _AVOID_MONTH_END:
                if (local + _MONTH_END_SPAN).month != local.month:
                    notes.append((-1, "month-end"))
            elif p is _AVOID_WEEKEND:
                if local.weekday() >= 5:
                    notes.append((-1, "weekend"))
            elif p is _AVOID_LAST_HOUR:
                ivs = day_intervals(ct, zone_name, local.toordinal())
                if ivs and t >= ivs[-1][1] - LAST_HOUR * 60:
                    notes.append((-1, "last hour of the working day"))
        return sum(n for n, _ in notes), tuple(f"{'+' if n > 0 else '-'} {w}" for n, w in notes)

    def _tasks(self, t: float, state: _TierState) -> tuple[TaskRequest, ...]:
        ct = state.tier
        # A blocked case escalates nothing; neither does one whose promise to pay is pending.
        if ct is None or state.case_reasons:
            return ()
        if not ct.escalations:
            return ()
        out: list[TaskRequest] = []
        for esc in ct.escalations:
            if esc.min_dpd is not None and state.dpd < esc.min_dpd:
                continue
            if esc.min_days_in_stage is not None and (
                state.days_in_stage is None or state.days_in_stage < esc.min_days_in_stage
            ):
                continue
            days_without_progress = esc.days_without_progress
            why = [f"tier {ct.tier.id}"]
            if days_without_progress is not None:
                since = self._last_progress(t)
                days_idle = (t - since) / _DAY if since is not None else None
                days_in_tier = self._days_in_tier(ct, state)
                idle = days_idle if days_idle is not None else float(days_in_tier)
                if min(idle, float(days_in_tier)) < days_without_progress:
                    continue
                why.append(f"no progress for {days_without_progress}+ days")
            out.append(
                TaskRequest(
                    key=esc.key,
                    action=esc.action,
                    requires_approval=esc.requires_approval,
                    reason="; ".join([*why, esc.note] if esc.note else why),
                )
            )
        return tuple(out)

    def _last_progress(self, t: float) -> float | None:
        if not self.idx.rpc_by_party:
            return None
        stamps = [self.idx.last_rpc(pid, t) for pid in self.idx.rpc_by_party]
        return max((ts for ts in stamps if ts is not None), default=None)

    @staticmethod
    def _days_in_tier(ct: CompiledTier, state: _TierState) -> int:
        if ct.days_in_stage_min is not None and state.days_in_stage is not None:
            return state.days_in_stage - ct.days_in_stage_min
        if ct.dpd_min is not None:
            return state.dpd - ct.dpd_min
        return state.days_in_stage or 0


def _usable(cp: ContactPoint) -> bool:
    if cp.validity in _BAD_VALIDITY:
        return False
    kind = cp.kind
    opted_out = cp.opted_out
    if opted_out and all(ch in opted_out for ch in CHANNELS_BY_KIND[kind]):
        return False
    return not (cp.do_not_call and kind is _PHONE)


def _phone_zones(
    points: tuple[ContactPoint, ...],
    kinds: list[ContactKind],
    facts: list[tuple[tuple[str, ...], bool | None]],
) -> tuple[str, ...]:
    """Every zone a party's phones may be in (a phone's own zone if known, else the
    number's candidates): the zones of a contact point that says nothing itself."""
    seen: dict[str, None] = {}
    for i in range(len(points)):
        if kinds[i] is _PHONE:
            zone_name = points[i].timezone
            for z in (zone_name,) if zone_name else facts[i][0]:
                seen[z] = None
    return tuple(seen)


def _allowed_order(a: AllowedAction) -> tuple[int, bool]:
    return -a.preference, a.candidate.party_role is not _DEBTOR


def _first(item: tuple[int, object, object] | tuple[int, object]) -> int:
    return item[0]


def _lowest(a: Disclosure, b: Disclosure) -> Disclosure:
    return a if _RANK[a] <= _RANK[b] else b


def _highest(a: Disclosure, b: Disclosure) -> Disclosure:
    return a if _RANK[a] >= _RANK[b] else b


_RANK: Final = {d: d.rank for d in Disclosure}


def _source(clause: Clause | None) -> str | None:
    return f"{clause.id}: {clause.source}" if clause is not None else None


# A decision is built by setting its slots directly: the frozen dataclass's generated
# `__init__` sets each of its 14 fields through `object.__setattr__` in a Python frame, the
# largest single cost of a compiled decision's output. Decision has no `__post_init__` or
# field converters, so the result is the same object `Decision(...)` builds
# (tests/strategy/test_engine_caches.py checks it field by field).
_DECISION_SLOTS: Final = tuple(getattr(Decision, f.name).__set__ for f in fields(Decision))
_object_new: Final = object.__new__


# country -> local day ordinal -> the calendar's warnings for a decision that day; pure.
_CALENDAR_WARNINGS: Final[dict[str, dict[int, tuple[Reason, ...]]]] = {}


def _warnings(ct: CompiledTier | None, ordinal: int) -> tuple[Reason, ...]:
    """What the decision rests on that is less than it should be: a tier that skips
    holidays, in a country whose days off are set by a yearly notice, deciding on a local
    day (in the strategy's home zone) of a year whose notice is not shipped
    (`calendar.NOTICES`)."""
    if ct is None:
        return ()
    country = ct.holiday_country
    if country is None or not ct.tier.skip_holidays:
        return ()
    by_day = _CALENDAR_WARNINGS.get(country)
    if by_day is None:
        by_day = _CALENDAR_WARNINGS[country] = {}
    hit = by_day.get(ordinal)
    if hit is None:
        hit = remember(by_day, ordinal, _calendar_warnings(country, ordinal))
    return hit


def _calendar_warnings(country: str, ordinal: int) -> tuple[Reason, ...]:
    year = date.fromordinal(ordinal).year
    if not schedule_missing(country, year):
        return ()
    return (
        Reason(
            "calendar.no_published_schedule",
            f"no published holiday schedule for {country} {year} is shipped: days off are"
            " the holidays library's statutory list, without the notice's weekend days"
            " inside a break or its make-up working days",
        ),
    )


def _decision(
    case_id: str,
    at: datetime,
    strategy: str,
    strategy_version: int,
    profile: str,
    tier: str | None,
    days_past_due: int,
    allowed: tuple[AllowedAction, ...],
    refused: tuple[Refusal, ...],
    case_reasons: tuple[Reason, ...],
    tasks: tuple[TaskRequest, ...],
    guidance: tuple[str, ...],
    extra: dict[str, Any],
    warnings: tuple[Reason, ...] = (),
) -> Decision:
    """`Decision(...)` with the same positional fields, without the generated `__init__`."""
    d: Decision = _object_new(Decision)
    s = _DECISION_SLOTS
    s[0](d, case_id)
    s[1](d, at)
    s[2](d, strategy)
    s[3](d, strategy_version)
    s[4](d, profile)
    s[5](d, tier)
    s[6](d, days_past_due)
    s[7](d, allowed)
    s[8](d, refused)
    s[9](d, case_reasons)
    s[10](d, tasks)
    s[11](d, guidance)
    s[12](d, extra)
    s[13](d, warnings)
    return d


# (zones, n, instant) -> [start, end) of the n local days ending with the instant's day,
# over all the zones: pure, bounded.
_PERIODS: Final[dict[tuple[tuple[str, ...], int, float], tuple[float, float]]] = {}


def _period(zones: tuple[str, ...], days: int, t: float) -> tuple[float, float]:
    """[start, end) of `days` local days ending with today, over all the zones."""
    key = (zones, days, t)
    hit = _PERIODS.get(key)
    if hit is None:
        start = end = None
        for z in zones:
            o = local_ordinal(t, z)
            s, e = day_start(z, o - days + 1), day_start(z, o + 1)
            start = s if start is None or s < start else start
            end = e if end is None or e > end else end
        assert start is not None and end is not None
        hit = remember(_PERIODS, key, (start, end))
    return hit


# (zone, local day ordinal, start minute, end minute) -> that span as instants; pure.
_PROFILE_INTERVALS: Final[dict[tuple[str, int, int, int], Interval]] = {}


def _profile_interval(zone_name: str, ordinal: int, lo: int, hi: int) -> Interval:
    key = (zone_name, ordinal, lo, hi)
    hit = _PROFILE_INTERVALS.get(key)
    if hit is None:
        hit = remember(_PROFILE_INTERVALS, key, local_interval(zone_name, ordinal, lo, hi))
    return hit


# (zones, conversation instant, days) -> the start of the local day `days` after the
# conversation's, the latest over the zones; pure, bounded.
_QUIET_ENDS: Final[dict[tuple[tuple[str, ...], float, int], float]] = {}


def _quiet_end(zones: tuple[str, ...], conversation: float, days: int) -> float:
    """The instant a period of `days` local calendar days, the conversation's day being
    the first, ends in every zone."""
    key = (zones, conversation, days)
    hit = _QUIET_ENDS.get(key)
    if hit is None:
        end = max(day_start(z, local_ordinal(conversation, z) + days) for z in zones)
        hit = remember(_QUIET_ENDS, key, end)
    return hit


# (instant, lookback) -> the instant the lookback starts, in UTC; pure, bounded.
_SINCE: Final[dict[tuple[float, timedelta], datetime]] = {}
# Datetimes of instants every case decided at the same instant shares (the decision's
# instant, the end of a window in a zone): pure, bounded like the compiled strategy's
# per-instant caches. Instants read from a case's history are converted per decision.
_INSTANTS: Final[dict[float, datetime]] = {}


def _instant(ts: float) -> datetime:
    hit = _INSTANTS.get(ts)
    if hit is None:
        hit = remember(_INSTANTS, ts, from_ts(ts))
    return hit


# Public reasons are immutable values that recur across decisions and cases ("the tier
# does not use email for a debtor"): built once per distinct internal reason.
_PUBLIC: Final[dict[tuple[str, str, float | None, str | None], Reason]] = {}


def _publics(reasons: Sequence[_Reason]) -> tuple[Reason, ...]:
    """The public reasons of internal ones."""
    if not reasons:
        return ()
    out: list[Reason] = []
    for r in reasons:
        public = r.public
        if public is None:
            public = r.public = _public(r)
        out.append(public)
    return tuple(out)


def _public(r: _Reason) -> Reason:
    key = (r.rule, r.message, r.next, r.source)
    hit = _PUBLIC.get(key)
    if hit is None:
        nxt = r.next
        hit = Reason(r.rule, r.message, from_ts(nxt) if nxt is not None else None, r.source)
        if len(_PUBLIC) > 20_000:
            _PUBLIC.clear()
        _PUBLIC[key] = hit
    return hit
