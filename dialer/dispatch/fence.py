"""The timing rules of the dispatch fence (issue 19), in one place.

A worker moves its reserved attempt to `dialing` with a compare-and-set on its lease
immediately before the provider call (`Fence.check`, from `dialer.dispatch.send`), and
sends the request only within `SEND_WINDOW` of that fence (else it fences again; the
Twilio client's connections check that deadline at each socket write: `adapters.sendby`).
So:
- a `reserved` attempt whose lease has run out was never dialled and never will be;
- a `dialing` attempt can reach the provider only until its fence + `SEND_WINDOW` + the
  HTTP client's whole timeout; the reconciler looks one up only after that and a margin
  (`dialing_reclaim_after`);
- an opt-out committed after a fence can meet a create only from a fence of the last
  `SEND_WINDOW`: the STOP's answer waits for those (`dialer.services.optouts.settle`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from dialer.db.models import AttemptRow
from dialer.dispatch import sql
from dialer.dispatch.agents import free_held_agent
from dialer.dispatch.context import WorkerContext
from dialer.domain.attempts import AttemptState
from strategy.model import CaseFlag

if TYPE_CHECKING:
    from dialer.dispatch.redecide import Reservation

log = logging.getLogger(__name__)

SEND_WINDOW = timedelta(seconds=1)
MIN_MARGIN = timedelta(seconds=1)
# A request started within the send window reaches the provider within this (a pooled
# keep-alive connection); the STOP's answer waits at most SEND_WINDOW + SETTLE_MARGIN.
SETTLE_MARGIN = timedelta(milliseconds=500)


def dialing_reclaim_after(http_timeout: timedelta, margin: timedelta) -> timedelta:
    """How long after its fence a `dialing` attempt may be looked up and reclaimed: the
    send window, the HTTP client's whole timeout, and a margin of at least `MIN_MARGIN`."""
    return SEND_WINDOW + http_timeout + max(margin, MIN_MARGIN)


class Fence:
    """The fence of one worker: `check` is its batcher's function."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    async def check(self, batch: Sequence[tuple[Reservation, bool]]) -> list[bool | BaseException]:
        """reserved (or, `again`, dialing) -> dialing, for the attempts whose lease this
        worker holds and that no opt-out, cease or consent revocation has reached since
        the decision: one autocommitted statement on PostgreSQL, which reads the contact
        point and case as committed when it runs (so it is ordered by commit)."""
        ctx = self.ctx
        now = ctx.clock()
        if ctx.autocommit is not None:
            params = {
                "ids": [r.attempt_id for r, _ in batch],
                "consented": [r.consented for r, _ in batch],
                "again": [again for _, again in batch],
                "sources": sql.FENCE_FROM,
                "dialing": AttemptState.DIALING.value,
                "cease": CaseFlag.CEASE.value,
                "owner": ctx.owner,
                "now": now,
            }
            async with ctx.autocommit.connect() as conn:
                moved = {row[0] for row in await conn.execute(sql.FENCE, params)}
            return [r.attempt_id in moved for r, _ in batch]
        out: list[bool | BaseException] = []
        async with ctx.serial(), ctx.maker() as session:
            for r, again in batch:
                found = (await session.execute(sql.FENCE_FACTS, {"id": r.attempt_id})).first()
                ok = (
                    found is not None
                    and found.state in (sql.FENCE_FROM_AGAIN if again else sql.FENCE_FROM)
                    and found.lease_owner == ctx.owner
                    and found.lease_until is not None
                    and found.lease_until > now
                    and not blocked(r, found)
                )
                if ok:
                    await session.execute(
                        update(AttemptRow)
                        .where(AttemptRow.id == r.attempt_id)
                        .values(state=AttemptState.DIALING.value, dialing_at=now, updated_at=now)
                    )
                out.append(ok)
            await session.commit()
        return out

    async def refuse_if_blocked(self, r: Reservation) -> tuple[str, list[str]] | None:
        """After a fence that did not pass: if the lease is still this worker's, a
        protective fact stopped it: a reserved attempt is refused with its reasons here.
        The attempt's state and the rules; None when the lease was taken (nothing to do)."""
        ctx = self.ctx
        now = ctx.clock()
        async with ctx.serial(), ctx.maker() as session:
            found = (await session.execute(sql.FENCE_FACTS, {"id": r.attempt_id})).first()
            if found is None:
                return None
            ours = found.lease_owner == ctx.owner and (found.lease_until or now) > now
            reasons = blocked(r, found) if ours else []
            if not reasons:
                log.warning("attempt %s: lease taken (%s); not dialled", r.attempt_id, found.state)
                return None
            if found.state == AttemptState.RESERVED.value:
                refusal = {"refusal": {"reasons": reasons}}
                conn = await session.connection()
                if await sql.move(
                    conn, r.attempt_id, found.state, AttemptState.REFUSED, refusal, ctx.clock()
                ):
                    await free_held_agent(conn, r.attempt_id, now)
            await session.commit()
        return found.state, [str(x["rule"]) for x in reasons]


def blocked(r: Reservation, found: Any) -> list[dict[str, Any]]:
    """The protective facts committed since the decision that forbid this attempt now:
    an opt-out of its channel on its contact point (compliance.md "always": at once), a
    cease-communication flag on the case (15 U.S.C. 1692c(c)), or the channel's consent
    revoked (47 CFR 64.1200(a)(10)) when the decision had it."""
    channel = str(found.channel)
    reasons: list[dict[str, Any]] = []
    if channel in (found.opted_out or ()):
        reasons.append(
            {"rule": "optout.channel", "message": f"opted out of {channel} since the decision"}
        )
    if CaseFlag.CEASE.value in (found.flags or ()):
        reasons.append(
            {"rule": f"flag.{CaseFlag.CEASE.value}", "message": "cease since the decision"}
        )
    if r.consented and channel not in (found.consent or ()):
        reasons.append(
            {"rule": "guardrail.consent", "message": f"consent to {channel} revoked since"}
        )
    return reasons
