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
from strategy.verdicts import Cand, Exceeded, RuleReason, TierFacts, WindowVerdict, source
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
        # When: the window in every candidate zone, found once per zone set and instant.
        zone_key = cand.zone_key
        verdict = now.windows.get(zone_key)
        if verdict is None:
            verdict = now.windows[zone_key] = _window(ctx, tc, ct, cand.zones, t)
        window_end = t
        if verdict[0]:
            end = verdict[1]
            window_end = end if end is not None else t
        else:
            _refuse_window(ctx, cand, verdict, t, explain, reasons)
        # How often: the caps over their limit (counted once per zone set and instant)
        # and spacing.
        over = now.exceeded.get(zone_key)
        if over is None:
            over = now.exceeded[zone_key] = exceeded(ctx, now, ct, cand.zones, zone_key, t)
        if facts.spacing or facts.zero_caps or over[0] or over[1] or over[2]:
            _how_often(ctx, now, ct, cand, facts, over, t, reasons)
        if check_quiet:
            quiet(ctx, ct, cand, facts, t, reasons)
        out.append((reasons, disclosure, window_end))
    return out


def _window(
    ctx: Context, tc: TierCache, ct: CompiledTier, zones: tuple[str, ...], t: float
) -> WindowVerdict:
    """The window verdict for these zones at t, from the tier's cache when a decision at
    the same instant asked it."""
    key = (zones, t)
    verdict = tc.windows.get(key)
    if verdict is None:
        verdict = remember(tc.windows, key, window(tc, ct, ctx.profile, zones, t))
    return verdict


def _refuse_window(
    ctx: Context,
    cand: Cand,
    verdict: WindowVerdict,
    t: float,
    explain: bool,
    reasons: list[RuleReason],
) -> None:
    """Append the window's refusal and, at the decision's own instant, the profile's."""
    _, end_or_next, rule, message, tier_refused = verdict
    clause = ctx.profile.window_clause
    in_law = source(clause) if rule == GUARD_WINDOW else None
    reasons.append(RuleReason(rule, message, end_or_next, in_law))
    # Only the decision's own refusals need it: the law's hours open no later than the
    # tier's, so it never moves a next-allowed instant.
    if tier_refused and explain:
        guard = guard_window(ctx.cache, ctx.profile, cand.zones, t)
        if guard is not None:
            reasons.append(RuleReason(GUARD_WINDOW, guard[0], guard[1], source(clause)))


def _how_often(
    ctx: Context,
    now: At,
    ct: CompiledTier,
    cand: Cand,
    facts: TierFacts,
    over: Exceeded,
    t: float,
    reasons: list[RuleReason],
) -> None:
    """Caps and spacing. Every cap and group is counted in one pass per period and
    instant (`over`); a candidate reads only the caps over their limit."""
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
