"""The tier's escalations due for the case at an instant, as tasks for the service."""

from __future__ import annotations

from strategy.compiled import CompiledTier
from strategy.context import Context, TierState
from strategy.decision import TaskRequest

_DAY = 86400.0


def tasks(ctx: Context, t: float, state: TierState) -> tuple[TaskRequest, ...]:
    """Every escalation of the tier whose days past due, days in stage and days without
    progress have come. A blocked case escalates nothing; neither does one whose promise
    to pay is pending."""
    ct = state.tier
    if ct is None or state.case_reasons or not ct.escalations:
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
            since = _last_progress(ctx, t)
            days_idle = (t - since) / _DAY if since is not None else None
            days_in_tier = _days_in_tier(ct, state)
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


def _last_progress(ctx: Context, t: float) -> float | None:
    """The last right-party conversation with anyone before t."""
    idx = ctx.idx
    if not idx.rpc_by_party:
        return None
    stamps = [idx.last_rpc(pid, t) for pid in idx.rpc_by_party]
    return max((ts for ts in stamps if ts is not None), default=None)


def _days_in_tier(ct: CompiledTier, state: TierState) -> int:
    if ct.days_in_stage_min is not None and state.days_in_stage is not None:
        return state.days_in_stage - ct.days_in_stage_min
    if ct.dpd_min is not None:
        return state.dpd - ct.dpd_min
    return state.days_in_stage or 0
