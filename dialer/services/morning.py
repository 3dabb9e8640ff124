"""A campaign's morning in numbers, for the dashboard's charts: outcomes by local hour
(in the portfolio's zone) and by the case's tier, refusals by rule, and the contact and
promise rates. Counts only; the page draws them."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AttemptRow, CaseRow, Portfolio
from dialer.domain.attempts import AttemptState
from dialer.services import campaigns
from strategy.model import CONVERSATION_RESULTS, RIGHT_PARTY_RESULTS, Result

# Attempts that never reached anyone: they have no hour on the chart and no rate.
_NOT_DISPATCHED = frozenset(
    {
        AttemptState.PLANNED.value,
        AttemptState.QUEUED.value,
        AttemptState.REFUSED.value,
        AttemptState.CANCELLED.value,
        AttemptState.NOT_SENT.value,
    }
)
_CONVERSATIONS = frozenset(r.value for r in CONVERSATION_RESULTS)
_RIGHT_PARTY = frozenset(r.value for r in RIGHT_PARTY_RESULTS)


def outcome_label(state: str, result: str) -> str:
    """An attempt's outcome as the charts name it: the result once completed, else the
    state it is in (failed, refused, in progress ...)."""
    return result if state == AttemptState.COMPLETED.value else state


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def morning(session: AsyncSession, campaign_id: uuid.UUID) -> dict[str, Any]:
    """The campaign's morning: `by_hour` (local hour of the send -> outcome -> attempts),
    `by_tier` (tier -> outcome -> attempts), `refused_by_rule`, and the rates: contacts
    (a conversation) and right-party contacts per dispatched call, promises per
    right-party contact."""
    row = await campaigns.get_campaign(session, campaign_id)
    zone_name = await session.scalar(
        select(Portfolio.timezone).where(Portfolio.name == row.portfolio)
    )
    zone = ZoneInfo(zone_name or "UTC")
    by_hour: defaultdict[str, Counter[str]] = defaultdict(Counter)
    by_tier: defaultdict[str, Counter[str]] = defaultdict(Counter)
    calls = conversations = right_party = promises = texts = delivered = 0
    rows = await session.execute(
        select(
            AttemptRow.channel,
            AttemptRow.state,
            AttemptRow.result,
            func.coalesce(AttemptRow.sent_at, AttemptRow.dialing_at, AttemptRow.at),
            CaseRow.tier,
        )
        .join(CaseRow, CaseRow.id == AttemptRow.case_id)
        .where(AttemptRow.campaign_id == campaign_id)
    )
    for channel, state, result, sent, tier in rows:
        label = outcome_label(state, result)
        by_tier[tier or "(no tier)"][label] += 1
        if state in _NOT_DISPATCHED:
            continue
        if isinstance(sent, datetime):
            by_hour[f"{sent.astimezone(zone):%H}:00"][label] += 1
        if channel == "voice":
            calls += 1
            conversations += result in _CONVERSATIONS
            right_party += result in _RIGHT_PARTY
            promises += result == Result.PROMISE_TO_PAY.value
        elif channel == "sms":
            texts += 1
            delivered += result == Result.DELIVERED.value
    progress = await campaigns.progress(session, campaign_id)
    return {
        "campaign_id": str(campaign_id),
        "portfolio": row.portfolio,
        "timezone": zone.key,
        "window": row.window,
        "by_hour": {h: dict(c) for h, c in sorted(by_hour.items())},
        "by_tier": {t: dict(c) for t, c in sorted(by_tier.items())},
        "refused_by_rule": dict(Counter(progress.refused_by_rule).most_common()),
        "calls": calls,
        "conversations": conversations,
        "right_party_contacts": right_party,
        "promises": promises,
        "texts": texts,
        "texts_delivered": delivered,
        "contact_rate": _rate(conversations, calls),
        "right_party_rate": _rate(right_party, calls),
        "promise_rate": _rate(promises, right_party),
        "delivery_rate": _rate(delivered, texts),
    }
