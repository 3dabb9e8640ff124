"""The worker's SQL: the statements of the look, the reservation, the fence and the
`sent` record, and the one guarded state move they share.

PostgreSQL gets one statement per batch (arrays through `unnest`); `padded` keeps an
`IN` list's statement one of a few whatever the batch size.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.db.models import AttemptRow, CampaignRow, CaseRow, ContactPointRow, PacingRow
from dialer.db.types import UTCDateTime
from dialer.domain.attempts import AttemptState, advance, sources

DISPATCHABLE = frozenset({AttemptState.PLANNED, AttemptState.QUEUED})

PAD_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def padded(ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The ids, the last repeated up to a size of `PAD_SIZES`: an `IN` list's statement
    (and the driver's prepared statement) is then one of a few, whatever the batch size."""
    size = next((s for s in PAD_SIZES if s >= len(ids)), len(ids))
    return ids + ids[-1:] * (size - len(ids))


IDS: BindParameter[Any] = bindparam("ids", expanding=True)
LOOK = (
    select(
        AttemptRow.id,
        AttemptRow.state,
        CampaignRow.id.label("campaign"),
        CampaignRow.status,
        CampaignRow.pacing_cps,
        CampaignRow.max_in_progress,
        PacingRow.next_slot_at,
    )
    .outerjoin(CampaignRow, CampaignRow.id == AttemptRow.campaign_id)
    .outerjoin(PacingRow, PacingRow.campaign_id == AttemptRow.campaign_id)
    .where(AttemptRow.id.in_(IDS))
)
ATTEMPTS = (
    select(
        AttemptRow.id,
        AttemptRow.state,
        AttemptRow.channel,
        AttemptRow.contact_point_id,
        CampaignRow.id.label("campaign"),
        CampaignRow.status,
        CampaignRow.max_in_progress,
        CampaignRow.window,
        CampaignRow.pacing_cps,
        CampaignRow.mode,
    )
    .outerjoin(CampaignRow, CampaignRow.id == AttemptRow.campaign_id)
    .where(AttemptRow.id.in_(IDS))
)
LOCK_ATTEMPTS = (
    select(AttemptRow.id)
    .where(AttemptRow.id.in_(IDS))
    .order_by(AttemptRow.id)
    .with_for_update(skip_locked=True)
)
DISPATCHABLE_VALUES = [s.value for s in DISPATCHABLE]
# The fence moves to dialing from the states the table allows; a second fence (after a
# 429, or a fence too slow to dial on) renews the worker's own `dialing`.
FENCE_FROM = list(sources(AttemptState.DIALING))
FENCE_FROM_AGAIN = [*FENCE_FROM, AttemptState.DIALING.value]
# for each state, the states that may move to it
SOURCES = {t: list(sources(t)) for t in AttemptState}
TO_RESERVED = SOURCES[AttemptState.RESERVED]
# PostgreSQL: a batch's rows in one UPDATE, its values as arrays (one prepared statement)
RESERVE_COLUMNS = {
    "ids": "",
    "svids": "strategy_version_id",
    "profiles": "profile",
    "allowed": "allowed_by",
    "disc": "disclosure",
    "vm": "voicemail_disclosure",
    "tkeys": "template_key",
    "aoo": "append_opt_out",
}
RESERVE = text(
    "UPDATE attempts AS a SET state = 'reserved', at = :now, reserved_at = :now,"
    " updated_at = :now, lease_owner = :owner, lease_until = :until,"
    " strategy_version_id = v.svid, profile = v.profile,"
    " allowed_by = v.allowed, disclosure = v.disc, voicemail_disclosure = v.vm,"
    " template_key = v.tkey, append_opt_out = v.aoo"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:svids AS uuid[]), CAST(:profiles AS text[]),"
    " CAST(:allowed AS text[]), CAST(:disc AS text[]), CAST(:vm AS text[]),"
    " CAST(:tkeys AS text[]), CAST(:aoo AS boolean[]))"
    " AS v(id, svid, profile, allowed, disc, vm, tkey, aoo)"
    " WHERE a.id = v.id AND a.state = ANY(CAST(:sources AS text[])) RETURNING a.id"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime()))
# PostgreSQL: the fence for a batch (`fence.Fence.check`); `fence.blocked` is the same
# rule for SQLite and for saying why a fence failed. The contact point and case are read as
# committed when the statement runs: an opt-out that committed before it is seen.
# `a.id = ANY(:ids)` lets the planner look the attempts up by key (it cannot size the
# unnest), and the state test is a CASE so that it never prefers the state index (which
# would read every reserved and dialing row); the contact points and cases come by key.
# The attempts are locked, their contact points share-locked: a fence waits for an
# opt-out's open transaction on that point (and then sees it), and an opt-out waits for a
# fence that passed (which `optouts.settle` then waits for).
FENCE = text(
    "WITH ok AS (SELECT a.id FROM unnest(CAST(:ids AS uuid[]), CAST(:consented AS boolean[]),"
    " CAST(:again AS boolean[])) AS v(id, consented, again)"
    " JOIN attempts AS a ON a.id = v.id AND a.id = ANY(CAST(:ids AS uuid[]))"
    " JOIN contact_points AS cp ON cp.id = a.contact_point_id"
    " JOIN cases AS c ON c.id = a.case_id"
    " WHERE CASE WHEN a.state = ANY(CAST(:sources AS text[])) THEN true"
    " ELSE v.again AND a.state = :dialing END"
    " AND a.lease_owner = :owner AND a.lease_until > :now"
    " AND NOT (cp.opted_out @> jsonb_build_array(a.channel))"
    " AND NOT (c.flags @> jsonb_build_array(CAST(:cease AS text)))"
    " AND (NOT v.consented OR cp.consent @> jsonb_build_array(a.channel))"
    " ORDER BY a.id FOR NO KEY UPDATE OF a FOR SHARE OF cp)"
    " UPDATE attempts AS a SET state = :dialing, dialing_at = :now, updated_at = :now"
    " FROM ok WHERE a.id = ok.id RETURNING a.id"
).bindparams(bindparam("now", type_=UTCDateTime()))
FENCE_FACTS = (
    select(
        AttemptRow.state,
        AttemptRow.channel,
        AttemptRow.lease_owner,
        AttemptRow.lease_until,
        ContactPointRow.opted_out,
        ContactPointRow.consent,
        CaseRow.flags,
    )
    .join(ContactPointRow, ContactPointRow.id == AttemptRow.contact_point_id)
    .join(CaseRow, CaseRow.id == AttemptRow.case_id)
    .where(AttemptRow.id == bindparam("id"))
)


SENT = text(
    "UPDATE attempts AS a SET state = 'sent', provider_sid = v.sid,"
    " sent_at = COALESCE(a.dialing_at, :now),"
    " updated_at = :now FROM unnest(CAST(:ids AS uuid[]), CAST(:sids AS text[])) AS v(id, sid)"
    " WHERE a.id = v.id AND a.state = 'dialing' RETURNING a.id"
).bindparams(bindparam("now", type_=UTCDateTime()))


async def move(
    conn: AsyncConnection,
    attempt_id: uuid.UUID,
    current: str,
    target: AttemptState,
    values: dict[str, Any],
    now: datetime,
) -> bool:
    """One UPDATE through the state machine; False when the attempt did not move.
    Guarded by every state that may move to `target`, not only the one read: the
    outbox relay may turn planned into queued meanwhile (it does not lock the case)."""
    if advance(AttemptState(current), target) is None:
        return False
    result = await conn.execute(
        update(AttemptRow)
        .where(AttemptRow.id == attempt_id, AttemptRow.state.in_(SOURCES[target]))
        .values(state=target.value, updated_at=now, **values)
    )
    return bool(result.rowcount)
