"""Stored rows -> the engine's facts: one function per concept, one column list per table.

Every reader (`dialer.facts.reader` for one case, `dialer.facts.batch` for many) selects
the columns listed here, in this order, and turns them into `strategy.model` values with
these functions only, so the decision endpoint, the planner, the worker and the audit
decide on the same facts. A row is any sequence (an asyncpg record, a SQLAlchemy row, a
tuple); JSON columns are read as their text (see `text_column`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Text, cast
from sqlalchemy.sql.elements import ColumnElement

from dialer.db.models import AttemptRow, CaseRow, ContactPointRow, PartyRow, PaymentRow
from dialer.domain.attempts import LIVE_OR_DONE
from strategy.model import (
    Attempt,
    Case,
    CaseFlag,
    CaseStatus,
    Channel,
    ContactKind,
    ContactPoint,
    Party,
    PartyRole,
    RecordedUnreachable,
    Result,
    Stage,
    Validity,
)

# Attempts that reached (or may have reached) a provider or a person: the history.
# Planned, queued, refused, cancelled and never-sent ones are not contacts.
CONTACT_STATES = sorted(s.value for s in LIVE_OR_DONE)


def text_column(column: Any) -> ColumnElement[Any]:
    """A JSON column read as its text: no JSON decoding in the driver per row; the few
    distinct values (`'[]'`, `'["sms"]'`) parse once in the cached helpers below."""
    return cast(column, Text)


CASE_COLUMNS: tuple[Any, ...] = (
    CaseRow.id,
    CaseRow.amount,
    CaseRow.currency,
    CaseRow.due_date,
    CaseRow.balance,
    CaseRow.stage,
    CaseRow.stage_started_on,
    CaseRow.status,
    text_column(CaseRow.flags),
    CaseRow.portfolio,
    CaseRow.dispute_resolved_at,
    CaseRow.strategy_version_id,
    CaseRow.unreachable_since,
    CaseRow.unreachable_until,
    CaseRow.unreachable_source,
)
PARTY_COLUMNS: tuple[Any, ...] = (
    PartyRow.case_id,
    PartyRow.id,
    PartyRow.role,
    PartyRow.name,
    PartyRow.relation,
    PartyRow.knows_of_debt,
    PartyRow.refused_contact,
    PartyRow.timezone,
    PartyRow.title,
)
POINT_COLUMNS: tuple[Any, ...] = (
    ContactPointRow.party_id,
    ContactPointRow.id,
    ContactPointRow.kind,
    ContactPointRow.value,
    text_column(ContactPointRow.consent),
    text_column(ContactPointRow.opted_out),
    ContactPointRow.validity,
    ContactPointRow.timezone,
    ContactPointRow.do_not_call,
    ContactPointRow.mobile,
    text_column(ContactPointRow.number_zones),
    ContactPointRow.number_mobile,
)
ATTEMPT_COLUMNS: tuple[Any, ...] = (
    AttemptRow.case_id,
    AttemptRow.at,
    AttemptRow.channel,
    AttemptRow.party_id,
    AttemptRow.contact_point_id,
    AttemptRow.result,
    AttemptRow.id,
    AttemptRow.promise_amount,
    AttemptRow.promise_date,
    AttemptRow.callback_at,
)
PAYMENT_COLUMNS: tuple[Any, ...] = (PaymentRow.case_id, PaymentRow.at, PaymentRow.amount)
STRATEGY_VERSION = 11  # where the pinned strategy version sits in a case row


def case(r: Sequence[Any], parties: Sequence[Party]) -> Case:
    """A case from its `CASE_COLUMNS` row and its parties (in their stored order)."""
    return Case(
        id=str(r[0]),
        amount=r[1],
        currency=r[2],
        due_date=r[3],
        balance=r[4],
        stage=_STAGE[r[5]],
        stage_started_on=r[6],
        status=_STATUS[r[7]],
        flags=_flags(r[8]),
        portfolio=r[9],
        dispute_resolved_at=r[10],
        parties=tuple(parties),
        recorded_unreachable=recorded_unreachable(r[12], r[13], r[14]),
    )


def recorded_unreachable(
    since: datetime | None, until: datetime | None, source: str | None
) -> RecordedUnreachable | None:
    """`Case.recorded_unreachable` from the three stored columns (all or nothing)."""
    if since is None or until is None:
        return None
    return RecordedUnreachable(since=since, until=until, source=source or "")


def party(r: Sequence[Any], points: Sequence[ContactPoint]) -> Party:
    """A party from its `PARTY_COLUMNS` row and its contact points (in stored order)."""
    return Party(
        id=str(r[1]),
        role=_ROLE[r[2]],
        name=r[3],
        relation=r[4],
        knows_of_debt=bool(r[5]),
        refused_contact=bool(r[6]),
        timezone=r[7],
        title=r[8],
        contact_points=tuple(points),
    )


def contact_point(r: Sequence[Any]) -> ContactPoint:
    """A contact point from its `POINT_COLUMNS` row: consent, opt-outs (STOP, cease,
    consent revocation), validity (a recorded wrong number), and the number's stored
    facts (candidate zones, line type)."""
    zones, mobile = point_facts(r[9], _zones(r[10]), r[11])
    return ContactPoint(
        id=str(r[1]),
        kind=_KIND[r[2]],
        value=r[3],
        consent=_channels(r[4]),
        opted_out=_channels(r[5]),
        validity=_VALIDITY[r[6]],
        timezone=r[7],
        do_not_call=bool(r[8]),
        mobile=mobile,
        zones=zones,
    )


def point_facts(
    mobile: bool | None, number_zones: Sequence[str] | None, number_mobile: bool | None
) -> tuple[tuple[str, ...] | None, bool | None]:
    """`ContactPoint.zones` and `.mobile` from the stored columns: the caller's `mobile`
    wins over the number's; without stored zones the engine derives both itself."""
    if number_zones is None:
        return None, mobile
    return tuple(number_zones), number_mobile if mobile is None else mobile


def attempt(r: Sequence[Any]) -> Attempt:
    """A contact from its `ATTEMPT_COLUMNS` row, with the promise or callback it got."""
    return Attempt(
        at=r[1],
        channel=_CHANNEL[r[2]],
        party_id=str(r[3]),
        contact_point_id=str(r[4]),
        result=_RESULT[r[5]],
        id=str(r[6]),
        promise_amount=r[7],
        promise_date=r[8],
        callback_at=r[9],
    )


def payment(r: Sequence[Any]) -> tuple[datetime, Decimal]:
    """A payment from its `PAYMENT_COLUMNS` row: (instant, amount)."""
    return r[1], r[2]


@lru_cache(maxsize=4096)
def _channels(text: str) -> frozenset[Channel]:
    return frozenset(_CHANNEL[c] for c in json.loads(text))


@lru_cache(maxsize=4096)
def _flags(text: str) -> frozenset[CaseFlag]:
    return frozenset(CaseFlag(f) for f in json.loads(text))


@lru_cache(maxsize=4096)
def _zones(text: str | None) -> tuple[str, ...] | None:
    found = None if text is None else json.loads(text)
    return None if found is None else tuple(found)


_CHANNEL = {c.value: c for c in Channel}
_STAGE = {s.value: s for s in Stage}
_STATUS = {s.value: s for s in CaseStatus}
_RESULT = {r.value: r for r in Result}
_ROLE = {r.value: r for r in PartyRole}
_KIND = {k.value: k for k in ContactKind}
_VALIDITY = {v.value: v for v in Validity}
