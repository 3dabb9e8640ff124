"""The decision engine: who may be contacted for a case, now, how, and why not.

`decide` climbs the ladder: the case's tier at the instant (`strategy.tiers`), the
candidates (party x contact point x channel, `strategy.candidates`), every rule against
each (who, when, how often: `strategy.rules`), then the decision: the allowed actions
best first, each refusal with every reason and the instant all of them pass, the tasks
due (`strategy.tasks`). Time is a parameter; the engine reads no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, timezone
from typing import Any, Final
from zoneinfo import ZoneInfo

from strategy.cache import PUBLIC_CACHE_SIZE, EngineCache, remember
from strategy.calendar import from_ts
from strategy.candidates import build_candidates
from strategy.compiled import CompiledStrategy, compile_strategy
from strategy.context import Context, TierState
from strategy.decision import AllowedAction, Decision, Reason, Refusal, TaskRequest
from strategy.document import Strategy
from strategy.guardrails import GuardrailProfile
from strategy.model import Case, Disclosure, History, PartyRole, ProfileMismatch
from strategy.parties import template, unreachable_why
from strategy.rules import evaluate, next_allowed
from strategy.tasks import tasks
from strategy.tiers import at, promise_state, warnings
from strategy.verdicts import Cand, RuleReason
from strategy.windows import preference

# Enum members as `Final` constants: compiled, `ContactKind.PHONE` is a module-dict and an
# enum-class attribute lookup per use (docs/performance.md measures it).
_DEBTOR: Final = PartyRole.DEBTOR

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
    return _new_decision(
        ctx.case.id,
        now,
        strategy.name,
        strategy.version,
        ctx.profile.name,
        tier.id if tier else None,
        state.dpd,
        tuple(allowed),
        tuple(refused),
        _publics(ctx.cache, state.case_reasons),
        tasks(ctx, t, state),
        guidance,
        extra,
        warnings(ctx, ct, state.ordinal),
    )


# A decision is built by setting its slots: the frozen dataclass's generated `__init__`
# sets each of its 14 fields through `object.__setattr__` in a Python frame, about 5% of
# a compiled decision (docs/performance.md). Decision has no `__post_init__` or field
# converters, so the object is the one `Decision(...)` builds (tests/strategy/
# test_engine_caches.py checks it field by field, and that no field was added).
_DECISION_SLOTS: Final = tuple(getattr(Decision, f.name).__set__ for f in fields(Decision))
_object_new: Final = object.__new__


def _new_decision(
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
    warnings: tuple[Reason, ...],
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
    return -a.preference, a.candidate.party_role is not _DEBTOR


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
