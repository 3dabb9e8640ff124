"""Every rule against every candidate at an instant, and the next instant a refused
candidate passes them all.

One loop over the candidates: what they share at t (the tier, the case's reasons, each
zone set's window and caps over their limit, the spacing verdicts) is found once, in the
instant's `At`, for all of them. A refusal's next-allowed instant is a fixed point:
the candidate is evaluated again at the latest instant its reasons name, until all pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from strategy.cache import TierCache, remember
from strategy.caps import cap_reasons, exceeded, quiet, spacing
from strategy.compiled import CompiledTier
from strategy.context import At, Context
from strategy.model import Disclosure, PartyRole
from strategy.parties import debtor_unreachable, tier_facts
from strategy.tiers import HORIZON_DAYS, at
from strategy.verdicts import Cand, RuleReason, TierFacts, source
from strategy.windows import GUARD_WINDOW, guard_window, window

MAX_FIXPOINT_STEPS: Final = 24
_DAY: Final = 86400.0
_ALL_ROLES: Final = frozenset(PartyRole)

# A candidate's verdict at an instant: (its reasons to refuse, none if allowed; its
# disclosure; the end of its window).
Verdict = tuple[list[RuleReason], Disclosure, float]


def evaluate(
    ctx: Context, cands: Sequence[Cand], t: float, now: At | None = None, explain: bool = False
) -> list[Verdict]:
    """Every candidate's verdict at t. `explain`: t is the decision's own instant, whose
    refusals also name the reasons that move no next-allowed instant."""
    if now is None:
        now = at(ctx, t)
    state = now.state
    ct = state.tier
    case_reasons = state.case_reasons
    if ct is None:
        return [([*case_reasons, *c.static], Disclosure.NONE, t) for c in cands]
    tc = ctx.cache.tiers[ct.index]
    facts_cache = tc.facts
    check_quiet = bool(ctx.idx.rpc_by_party)
    out: list[Verdict] = []
    for cand in cands:
        reasons: list[RuleReason] = (
            [*case_reasons, *cand.static] if case_reasons else list(cand.static)
        )
        facts = facts_cache.get(cand.facts_key)
        if facts is None:
            facts = tier_facts(ctx, ct, cand)
        # Who: the tier's rule for the party and channel, the debtor's reachability.
        if facts.reasons:
            reasons.extend(facts.reasons)
        disclosure = facts.disclosure
        if facts.reads_unreachable:
            unreachable = now.unreachable
            if unreachable is None:
                unreachable = now.unreachable = debtor_unreachable(ctx, ct, t)
            if not unreachable:
                reasons.extend(facts.reachable_reasons)
            elif facts.raised is not None:
                disclosure = facts.raised
        window_end = _when(ctx, now, tc, ct, cand, t, explain, reasons)
        _how_often(ctx, now, ct, cand, facts, t, reasons)
        if check_quiet:
            quiet(ctx, ct, cand, facts, t, reasons)
        out.append((reasons, disclosure, window_end))
    return out


def _when(
    ctx: Context,
    now: At,
    tc: TierCache,
    ct: CompiledTier,
    cand: Cand,
    t: float,
    explain: bool,
    reasons: list[RuleReason],
) -> float:
    """The local window in every candidate zone: its end if t is inside; else append the
    refusal (and, at the decision's instant, the profile's own) and return t."""
    zone_key = cand.zone_key
    verdict = now.windows.get(zone_key)
    if verdict is None:
        key = (cand.zones, t)
        verdict = tc.windows.get(key)
        if verdict is None:
            verdict = remember(tc.windows, key, window(tc, ct, ctx.profile, cand.zones, t))
        now.windows[zone_key] = verdict
    inside, end_or_next, rule, message, tier_refused = verdict
    if inside:
        return end_or_next if end_or_next is not None else t
    clause = ctx.profile.window_clause
    reasons.append(
        RuleReason(rule, message, end_or_next, source(clause) if rule == GUARD_WINDOW else None)
    )
    # Only the decision's own refusals need it: the law's hours open no later than the
    # tier's, so it never moves a next-allowed instant.
    if tier_refused and explain:
        guard = guard_window(ctx.cache, ctx.profile, cand.zones, t)
        if guard is not None:
            reasons.append(RuleReason(GUARD_WINDOW, guard[0], guard[1], source(clause)))
    return t


def _how_often(
    ctx: Context,
    now: At,
    ct: CompiledTier,
    cand: Cand,
    facts: TierFacts,
    t: float,
    reasons: list[RuleReason],
) -> None:
    """Caps and spacing. Every cap and group is counted in one pass per period and
    instant; a candidate reads only the caps over their limit."""
    zone_key = cand.zone_key
    over = now.exceeded.get(zone_key)
    if over is None:
        over = now.exceeded[zone_key] = exceeded(ctx, now, ct, cand.zones, zone_key, t)
    by_point, by_party, case = over
    groups = cand.groups
    if by_point or by_party or case or facts.zero_caps:
        cap_ids = facts.cap_ids
        on_point = by_point.get(groups[0])
        on_party = by_party.get(groups[1])
        if (
            facts.zero_caps
            or (case and not cap_ids.isdisjoint(case))
            or (on_point and not cap_ids.isdisjoint(on_point))
            or (on_party and not cap_ids.isdisjoint(on_party))
        ):
            cap_reasons(ctx, now, ct, cand, facts, over, t, reasons)
    if facts.spacing:
        verdicts = now.spacing
        for i, scope in facts.spacing:
            group = groups[scope]
            vkey = (i, group)
            if vkey in verdicts:
                r = verdicts[vkey]
            else:
                who = _ALL_ROLES if group is None else group
                r = verdicts[vkey] = spacing(ctx, ct.spacing[i], who, t)
            if r is not None:
                reasons.append(r)


def next_allowed(ctx: Context, cand: Cand, t0: float, reasons: list[RuleReason]) -> float | None:
    """The first instant from t0 at which every rule passes for `cand`, if nothing else
    changes: None when a reason names no instant or none comes within the horizon."""
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
        reasons = evaluate(ctx, (cand,), t)[0][0]
        if not reasons:
            return t
    return None
