"""How often: caps (attempts, conversations, unanswered attempts or contact occasions per
contact point, party or case in a period), spacing between attempts, and the quiet
periods after a right-party conversation; each refusal with the instant it passes."""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from strategy.cache import EngineCache, remember
from strategy.calendar import day_start, local_ordinal
from strategy.compiled import SCOPE_CONTACT_POINT, CompiledCap, CompiledSpacing, CompiledTier
from strategy.context import At, Context
from strategy.document import Counted
from strategy.model import PartyRole
from strategy.verdicts import NOTHING_EXCEEDED, Cand, Exceeded, RuleReason, TierFacts, source

EPS: Final = 0.001


def period(cache: EngineCache, zones: tuple[str, ...], days: int, t: float) -> tuple[float, float]:
    """[start, end) of `days` local days ending with t's, over all the zones."""
    key = (zones, days, t)
    hit = cache.periods.get(key)
    if hit is None:
        start = end = None
        for z in zones:
            o = local_ordinal(t, z)
            s, e = day_start(z, o - days + 1), day_start(z, o + 1)
            start = s if start is None or s < start else start
            end = e if end is None or e > end else end
        assert start is not None and end is not None
        hit = remember(cache.periods, key, (start, end))
    return hit


def _at_period(
    ctx: Context, at: At, zones: tuple[str, ...], zone_key: int, days: int, t: float
) -> tuple[float, float]:
    key = (zone_key, days)
    hit = at.periods.get(key)
    if hit is None:
        hit = at.periods[key] = period(ctx.cache, zones, days, t)
    return hit


def exceeded(
    ctx: Context, at: At, ct: CompiledTier, zones: tuple[str, ...], zone_key: int, t: float
) -> Exceeded:
    """Every cap over its limit at t for candidates in these zones, by group: the contact
    points', the parties' and the case's. One pass over each period's attempts counts
    every cap and group."""
    idx = ctx.idx
    ts = idx.ts
    if not ts:
        return NOTHING_EXCEEDED
    chans, roles, convs = idx.channels, idx.roles, idx.convs
    cps, parties = idx.cps, idx.parties
    counts: dict[tuple[int, str | None], int] = {}
    for cap_period in ct.cap_periods:
        if cap_period.local_days is not None:
            start, end = _at_period(ctx, at, zones, zone_key, cap_period.local_days, t)
        else:
            assert cap_period.rolling_seconds is not None
            start, end = t - cap_period.rolling_seconds + EPS, t + EPS
        lo = bisect_left(ts, start)
        hi = bisect_left(ts, end, lo)
        row_caps = cap_period.row_caps
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
                by_group = by_point if scopes[i] == SCOPE_CONTACT_POINT else by_party
                by_group.setdefault(g, []).append(i)
    return by_point, by_party, case


def cap_reasons(
    ctx: Context,
    at: At,
    ct: CompiledTier,
    cand: Cand,
    facts: TierFacts,
    over: Exceeded,
    t: float,
    reasons: list[RuleReason],
) -> None:
    """Append, in the tier's cap order, the reasons of the caps that refuse `cand`."""
    cp_id, party_id = cand.point.id, cand.party.id
    cap_ids = facts.cap_ids
    by_point, by_party, case = over
    hits: list[tuple[int, str | None]] = []
    on = by_point.get(cp_id)
    if on:
        hits += [(i, cp_id) for i in on if i in cap_ids]
    on = by_party.get(party_id)
    if on:
        hits += [(i, party_id) for i in on if i in cap_ids]
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
            who = ccap.roles if group is None else group
            r = verdicts[key] = _cap(ctx, at, ccap, who, cand.zones, zone_key, t)
        if r is not None:
            reasons.append(r)


def _first(item: tuple[int, str | None]) -> int:
    return item[0]


def _cap(
    ctx: Context,
    at: At,
    ccap: CompiledCap,
    group: str | frozenset[PartyRole],
    zones: tuple[str, ...],
    zone_key: int,
    t: float,
) -> RuleReason | None:
    """A cap's verdict; the same for every candidate sharing its group and zones."""
    local_days, rolling, limit = ccap.local_days, ccap.rolling_seconds, ccap.limit
    if local_days is not None:
        start, end = _at_period(ctx, at, zones, zone_key, local_days, t)
        if ccap.occasions:
            return _occasions(ctx, ccap, group, zones, local_days, start, end, t)
    else:
        assert rolling is not None
        start, end = t - rolling + EPS, t + EPS
    stamps = ctx.idx.count(start, end, ccap.scope, group, ccap.channels, ccap.count)
    n = len(stamps)
    if n < limit:
        return None
    # The instant enough of the counted attempts have left the period.
    nxt: float | None = None
    if limit > 0:
        oldest = stamps[n - limit]
        if local_days is not None:
            nxt = max(day_start(z, local_ordinal(oldest, z) + local_days) for z in zones)
        else:
            assert rolling is not None
            nxt = oldest + rolling
    return RuleReason(ccap.rule, f"{n} {ccap.message}", nxt, ccap.source)


def _occasions(
    ctx: Context,
    ccap: CompiledCap,
    group: str | frozenset[PartyRole],
    zones: tuple[str, ...],
    local_days: int,
    start: float,
    end: float,
    t: float,
) -> RuleReason | None:
    """An occasions cap's verdict: the local days in the period with a contact on the
    cap's channels are its occasions. A contact on a day that already is one shares it
    (email and phone on one follow-up day); another day is refused once `limit` days of
    the period are occasions. In every possible zone of the candidate, as for any cap: it
    passes again when the oldest of the last `limit` occasion days has left the period in
    each zone that refuses."""
    limit = ccap.limit
    stamps = ctx.idx.count(start, end, ccap.scope, group, ccap.channels, Counted.ATTEMPTS)
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
    return RuleReason(ccap.rule, f"{n} {ccap.message}; today is not one of them", nxt, ccap.source)


def spacing(
    ctx: Context, sp: CompiledSpacing, group: str | frozenset[PartyRole], t: float
) -> RuleReason | None:
    """The spacing rule's refusal while its last attempt in the group is too recent."""
    last = ctx.idx.last_before(t, sp.scope, group, sp.channels)
    if last is None or t - last >= sp.seconds:
        return None
    return RuleReason(sp.rule, sp.message, last + sp.seconds)


def quiet(
    ctx: Context,
    ct: CompiledTier,
    cand: Cand,
    facts: TierFacts,
    t: float,
    reasons: list[RuleReason],
) -> None:
    """The quiet periods after a right-party conversation: the tier's and the profile's."""
    last_rpc = ctx.idx.last_rpc(cand.party.id, t)
    if last_rpc is None:
        return
    if ct.quiet_seconds and t - last_rpc < ct.quiet_seconds:
        reasons.append(
            RuleReason(
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
        end = _quiet_end(ctx.cache, cand.zones, last_rpc, days)
        if t < end:
            reasons.append(
                RuleReason(
                    "guardrail.quiet_after_conversation",
                    f"no {cand.channel} within {days} days after a conversation,"
                    " its day counted as the first",
                    end,
                    source(ctx.profile.quiet_clause),
                )
            )


def _quiet_end(cache: EngineCache, zones: tuple[str, ...], conversation: float, days: int) -> float:
    """The instant a period of `days` local calendar days, the conversation's day being
    the first, ends in every zone."""
    key = (zones, conversation, days)
    hit = cache.quiet_ends.get(key)
    if hit is None:
        end = max(day_start(z, local_ordinal(conversation, z) + days) for z in zones)
        hit = remember(cache.quiet_ends, key, end)
    return hit
