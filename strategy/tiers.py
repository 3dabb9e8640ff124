"""The case at an instant: its tier, and the reasons that block the whole case (status,
protective flags, a dispute, a pending promise to pay, no matching tier)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Final

from strategy.cache import remember
from strategy.calendar import day_start, local_ordinal, schedule_missing
from strategy.compiled import CompiledStrategy, CompiledTier
from strategy.context import At, Context, TierState
from strategy.decision import Reason
from strategy.model import Case, CaseFlag, CaseStatus
from strategy.verdicts import RuleReason

# Enum members as `Final` constants: compiled, `ContactKind.PHONE` is a module-dict and an
# enum-class attribute lookup per use (docs/performance.md measures it).
_OPEN: Final = CaseStatus.OPEN

HORIZON_DAYS: Final = 120  # how far ahead a next-allowed instant is looked for

_BLOCKING_FLAGS: Final = {
    CaseFlag.CEASE: "the debtor asked us to cease communication",
    CaseFlag.BANKRUPTCY: "the debtor is in bankruptcy",
    CaseFlag.DECEASED: "the debtor is deceased",
    CaseFlag.DO_NOT_CALL: "the case is marked do-not-call",
    CaseFlag.DISPUTE: "the debt is disputed",
}


def at(ctx: Context, t: float) -> At:
    """What the rules find at t, memoised per decision."""
    hit = ctx.at_memo.get(t)
    if hit is None:
        if len(ctx.at_memo) > 64:
            ctx.at_memo.clear()
        hit = ctx.at_memo[t] = At(tier_state(ctx, t))
    return hit


def tier_state(ctx: Context, t: float) -> TierState:
    case, cs = ctx.case, ctx.cs
    ordinal = local_ordinal(t, ctx.home_zone)
    # The tier depends on the case's dates and stage and the local day only: cached for
    # the compiled strategy, shared by the many cases of a portfolio due the same day.
    cache = cs.cache.tier_of_dates
    key = (ordinal, case.due_date, case.stage, case.stage_started_on)
    hit = cache.get(key)
    if hit is None:
        hit = remember(cache, key, choose_tier(cs, case, date.fromordinal(ordinal)))
    index, dpd, days_in_stage = hit
    chosen = cs.tiers[index] if index >= 0 else None
    idx = ctx.idx
    if (
        case.status is _OPEN
        and not case.flags
        and not idx.disputes
        and idx.latest_promise is None
        and chosen is not None
        and (case.amount if case.balance is None else case.balance) > 0
    ):
        return TierState(chosen, dpd, days_in_stage, (), ordinal)
    today = date.fromordinal(ordinal)
    reasons = _case_reasons(ctx, t, today, dpd, days_in_stage, chosen)
    return TierState(chosen, dpd, days_in_stage, reasons, ordinal)


def choose_tier(cs: CompiledStrategy, case: Case, today: date) -> tuple[int, int, int | None]:
    """(the index of the first tier the case's dates and stage match on `today`, or -1;
    days past due; days in stage)."""
    dpd = (today - case.due_date).days
    days_in_stage = (today - case.stage_started_on).days if case.stage_started_on else None
    for ct in cs.tiers:
        tier = ct.tier
        if tier.stage is not None and tier.stage != case.stage:
            continue
        if tier.dpd is not None and not tier.dpd.contains(dpd):
            continue
        if tier.days_in_stage is not None and (
            days_in_stage is None or not tier.days_in_stage.contains(days_in_stage)
        ):
            continue
        return ct.index, dpd, days_in_stage
    return -1, dpd, days_in_stage


def _case_reasons(
    ctx: Context,
    t: float,
    today: date,
    dpd: int,
    days_in_stage: int | None,
    tier: CompiledTier | None,
) -> tuple[RuleReason, ...]:
    case = ctx.case
    out: list[RuleReason] = []
    if case.status is not _OPEN:
        out.append(RuleReason("case.status", f"the case is {case.status}"))
    elif case.outstanding <= 0:
        out.append(RuleReason("case.settled", "nothing is outstanding"))
    for flag, why in _BLOCKING_FLAGS.items():
        if flag in case.flags:
            out.append(RuleReason(f"flag.{flag}", why))
    disputes = ctx.idx.disputes
    if CaseFlag.DISPUTE not in case.flags and disputes:
        resolved = case.dispute_resolved_at.timestamp() if case.dispute_resolved_at else None
        if resolved is None or disputes[-1] > resolved:
            out.append(RuleReason("flag.dispute", "the debtor disputed the debt on a call"))
    promise = promise_state(ctx, t)
    if promise and promise[0] == "pending":
        out.append(
            RuleReason(
                "promise.pending",
                f"promise to pay {promise[1]}: collection waits until the grace period ends",
                promise[2],
                None,
            )
        )
    if tier is None:
        stage = f", stage {case.stage} day {days_in_stage}" if days_in_stage is not None else ""
        message = f"no tier of {ctx.strategy.name} matches {dpd} days past due{stage}"
        out.append(RuleReason("tier.none", message, _next_tier(ctx, today), None))
    return tuple(out)


def _next_tier(ctx: Context, today: date) -> float | None:
    """The next local day on which some tier will match, if the case just waits."""
    for ahead in range(1, HORIZON_DAYS):
        day = today + timedelta(days=ahead)
        if choose_tier(ctx.cs, ctx.case, day)[0] >= 0:
            return day_start(ctx.home_zone, day.toordinal())
    return None


def promise_state(ctx: Context, t: float) -> tuple[str, str, float] | None:
    """('pending' | 'kept' | 'broken', description, instant collection resumes)."""
    latest = ctx.idx.latest_promise
    if latest is None or latest[0] > t:
        return None
    made, attempt = latest
    assert attempt.promise_date is not None
    amount = attempt.promise_amount
    paid = sum((amt for ts, amt in ctx.payments if ts.timestamp() >= made), start=Decimal(0))
    sum_text = f"{amount} {ctx.case.currency} " if amount is not None else ""
    what = f"{sum_text}by {attempt.promise_date}"
    if (amount is not None and paid >= amount) or (amount is None and paid > 0):
        return ("kept", what, made)
    resume_day = attempt.promise_date + timedelta(days=ctx.strategy.promise_grace_days + 1)
    resume = day_start(ctx.home_zone, resume_day.toordinal())
    return ("pending", what, resume) if t < resume else ("broken", what, resume)


def warnings(ctx: Context, ct: CompiledTier | None, ordinal: int) -> tuple[Reason, ...]:
    """What the decision rests on that is less than it should be: a tier that skips
    holidays, in a country whose days off are set by a yearly notice, deciding on a local
    day (in the strategy's home zone) of a year whose notice is not shipped
    (`calendar.NOTICES`)."""
    if ct is None:
        return ()
    country = ct.holiday_country
    if country is None or not ct.tier.skip_holidays:
        return ()
    by_day = ctx.cache.calendar_warnings
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
