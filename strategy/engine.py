"""The decision engine: who may be contacted for a case, now, how, and why not.

`decide` climbs the ladder: the case's tier at the instant (`strategy.tiers`), the
candidates (party x contact point x channel, `strategy.candidates`), every rule against
each (who, when, how often: `strategy.rules`), then the decision: the allowed actions
best first, each refusal with every reason and the instant all of them pass, the tasks
due (`strategy.tasks`). Time is a parameter; the engine reads no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Final
from zoneinfo import ZoneInfo

from strategy.cache import PUBLIC_CACHE_SIZE, EngineCache, remember
from strategy.calendar import from_ts
from strategy.candidates import build_candidates
from strategy.compiled import CompiledStrategy, compile_strategy
from strategy.context import Context, TierState
from strategy.decision import AllowedAction, Decision, Reason, Refusal
from strategy.document import Strategy
from strategy.guardrails import GuardrailProfile
from strategy.model import Case, Disclosure, History, PartyRole, ProfileMismatch
from strategy.parties import template, unreachable_why
from strategy.rules import evaluate, next_allowed
from strategy.tasks import tasks
from strategy.tiers import at, promise_state, warnings
from strategy.verdicts import Cand, RuleReason
from strategy.windows import preference

# Builds a named tuple from its fields in one C call, without the generated `__new__`'s
# Python frame (docs/performance.md).
_new: Final = tuple.__new__


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

    `strategy` is compiled (`compile_strategy`, the dialer's way) or a document, then
    compiled under `profile` through the process's compile cache. Raises
    `ProfileMismatch` when `profile` is not one the strategy may be decided under (its
    own, `portfolio_profile`, or one tightening either), and `UnknownReference` when an
    attempt names a party or contact point the case does not hold."""
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
    cache = compiled.cache
    # A planner decides its cases at one `now`: its timestamp is kept for the object.
    last = cache.last_now
    if last[0] is now:
        t = last[1]
    else:
        t = now.timestamp()
        cache.last_now = (now, t)
    ctx = Context(case, history, compiled, t)
    ctx.candidates = build_candidates(ctx)
    return _decision(ctx, now, t)


def _decision(ctx: Context, now: datetime, t: float) -> Decision:
    """Evaluate the candidates at t and build the decision from their verdicts."""
    here = at(ctx, t)
    state = here.state
    allowed: list[AllowedAction] = []
    refused: list[Refusal] = []
    candidates = ctx.candidates
    verdicts = evaluate(ctx, candidates, t, here, True)
    for i in range(len(candidates)):
        cand = candidates[i]
        reasons, disclosure, window_end = verdicts[i]
        if not reasons:
            allowed.append(_allowed(ctx, cand, state, t, disclosure, window_end))
        else:
            nxt = next_allowed(ctx, cand, t, reasons)
            when = _instant(ctx.cache, nxt) if nxt is not None else None
            refused.append(
                _new(Refusal, (cand.public, _publics(ctx.cache, reasons), when, disclosure))
            )
    if len(allowed) > 1:
        allowed.sort(key=_allowed_order)
    ct = state.tier
    tier = ct.tier if ct else None
    guidance = tier.guidance if tier else ()
    promise = promise_state(ctx, t)
    if promise and promise[0] == "broken":
        guidance = (*guidance, f"promise to pay of {promise[1]} was broken: collection resumes")
    extra: dict[str, Any] = {
        "days_in_stage": state.days_in_stage,
        "promise": promise[0] if promise else None,
        "zones": ctx.point_zones,
        "zone_sources": ctx.zone_sources,
    }
    if here.unreachable and ct is not None:
        # Third parties were weighed with the debtor unreachable: say why.
        extra["debtor_unreachable"] = unreachable_why(ctx, ct, t)
    strategy = ctx.strategy
    return Decision(
        case_id=ctx.case.id,
        at=now,
        strategy=strategy.name,
        strategy_version=strategy.version,
        profile=ctx.profile.name,
        tier=tier.id if tier else None,
        days_past_due=state.dpd,
        allowed=tuple(allowed),
        refused=tuple(refused),
        case_reasons=_publics(ctx.cache, state.case_reasons),
        tasks=tasks(ctx, t, state),
        guidance=guidance,
        extra=extra,
        warnings=warnings(ctx, ct, state.ordinal),
    )


def _allowed(
    ctx: Context, cand: Cand, state: TierState, t: float, disclosure: Disclosure, end: float
) -> AllowedAction:
    ct = state.tier
    assert ct is not None
    tc = ctx.cache.tiers[ct.index]
    score, notes = preference(tc, ct, cand.zones[0], t)
    key = (cand.channel, cand.party.role, disclosure)
    how = tc.templates.get(key)
    if how is None:
        how = tc.templates[key] = template(ctx.profile, ct, *key)
    template_key, voicemail_disclosure, append_opt_out = how
    cache = ctx.cache
    action: AllowedAction = _new(
        AllowedAction,
        (
            cand.public,
            disclosure,
            template_key,
            _instant(cache, t),
            _instant(cache, end),
            ct.allowed_by,
            cand.zones,
            voicemail_disclosure,
            append_opt_out,
            score,
            notes,
        ),
    )
    return action


def _allowed_order(a: AllowedAction) -> tuple[int, bool]:
    """Best first: the higher preference score, then the debtor before others."""
    return -a.preference, a.candidate.party_role is not PartyRole.DEBTOR


def _instant(cache: EngineCache, ts: float) -> datetime:
    """The instant as a UTC datetime: the decision's, a window's end, a next-allowed."""
    hit = cache.instants.get(ts)
    if hit is None:
        hit = remember(cache.instants, ts, from_ts(ts))
    return hit


def _publics(cache: EngineCache, reasons: Sequence[RuleReason]) -> tuple[Reason, ...]:
    """The public reasons of internal ones. They recur across decisions and cases ("the
    tier does not use email for a debtor"): built once per distinct text and instant."""
    if not reasons:
        return ()
    out: list[Reason] = []
    for r in reasons:
        public = r.public
        if public is None:
            key = (r.rule, r.message, r.next, r.source)
            public = cache.publics.get(key)
            if public is None:
                nxt = r.next
                public = Reason(
                    r.rule, r.message, from_ts(nxt) if nxt is not None else None, r.source
                )
                remember(cache.publics, key, public, PUBLIC_CACHE_SIZE)
            r.public = public
        out.append(public)
    return tuple(out)
