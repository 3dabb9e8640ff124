"""The one place where stored rows and request documents become the engine's facts
(`strategy.model.Case` / `History`), and where a case document becomes table rows."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from dialer.db.models import AttemptRow, CaseRow, ContactPointRow, PaymentRow
from dialer.schemas.cases import CaseIn
from strategy.calendar import phone_facts
from strategy.model import (
    Attempt,
    Case,
    CaseFlag,
    CaseStatus,
    Channel,
    ContactKind,
    ContactPoint,
    History,
    Party,
    PartyRole,
    RecordedUnreachable,
    Result,
    Stage,
    Validity,
)

_NS = uuid.UUID("0b7c43f4-2f67-4f0e-9a55-5f4d1b1c6a10")


def case_id_for(portfolio: str, external_ref: str) -> uuid.UUID:
    return uuid.uuid5(_NS, f"case/{portfolio}/{external_ref}")


def party_id_for(case_id: uuid.UUID, key: str) -> uuid.UUID:
    return uuid.uuid5(case_id, f"party/{key}")


def contact_point_id_for(party_id: uuid.UUID, kind: str, value: str) -> uuid.UUID:
    return uuid.uuid5(party_id, f"cp/{kind}/{value}")


def number_facts(
    kind: str, value: str, known: Mapping[str, tuple[tuple[str, ...], bool | None]] | None = None
) -> tuple[list[str] | None, bool | None]:
    """The `number_zones` and `number_mobile` columns of a contact point: a phone's
    candidate zones and line type, derived once when it is written (the planner would
    otherwise derive them again for every number every morning); (None, None) for an
    email address. `known`: facts already derived by the caller, by E.164 number."""
    if kind != ContactKind.PHONE.value:
        return None, None
    found = known.get(value) if known is not None else None
    zones, mobile = found if found is not None else phone_facts(value)
    return list(zones), mobile


def point_facts(
    mobile: bool | None, number_zones: Sequence[str] | None, number_mobile: bool | None
) -> tuple[tuple[str, ...] | None, bool | None]:
    """`ContactPoint.zones` and `.mobile` from the stored columns: the caller's `mobile`
    wins over the number's; without stored zones the engine derives both itself."""
    if number_zones is None:
        return None, mobile
    return tuple(number_zones), number_mobile if mobile is None else mobile


@dataclass(slots=True)
class CaseRows:
    """One case document as plain row dicts, ready for a bulk upsert."""

    case: dict[str, Any]
    parties: list[dict[str, Any]] = field(default_factory=list)
    contact_points: list[dict[str, Any]] = field(default_factory=list)


def case_rows(
    doc: CaseIn,
    portfolio: str,
    now: datetime,
    numbers: Mapping[str, tuple[tuple[str, ...], bool | None]] | None = None,
) -> CaseRows:
    """The table rows of a case document; `numbers`: phone facts already derived."""
    cid = case_id_for(portfolio, doc.external_ref)
    rows = CaseRows(
        case={
            "id": cid,
            "portfolio": portfolio,
            "external_ref": doc.external_ref,
            "amount": doc.amount,
            "balance": doc.balance,
            "currency": doc.currency,
            "due_date": doc.due_date,
            "stage": doc.stage.value,
            "stage_started_on": doc.stage_started_on,
            "status": doc.status.value,
            "flags": sorted(f.value for f in doc.flags),
            "country": doc.country,
            "dispute_resolved_at": doc.dispute_resolved_at,
            "created_at": now,
            "updated_at": now,
        }
    )
    for i, party in enumerate(doc.parties):
        key = party.ref or f"#{i}"
        pid = party_id_for(cid, key)
        rows.parties.append(
            {
                "id": pid,
                "case_id": cid,
                "key": key,
                "position": i,
                "role": party.role.value,
                "name": party.name,
                "relation": party.relation,
                "knows_of_debt": party.knows_of_debt,
                "refused_contact": party.refused_contact,
                "timezone": party.timezone,
                "title": party.title,
            }
        )
        for j, point in enumerate(party.contact_points):
            number_zones, number_mobile = number_facts(point.kind.value, point.value, numbers)
            rows.contact_points.append(
                {
                    "id": contact_point_id_for(pid, point.kind.value, point.value),
                    "party_id": pid,
                    "case_id": cid,
                    "position": j,
                    "kind": point.kind.value,
                    "value": point.value,
                    "consent": sorted(c.value for c in point.consent),
                    "opted_out": sorted(c.value for c in point.opted_out),
                    "validity": point.validity.value,
                    "timezone": point.timezone,
                    "do_not_call": point.do_not_call,
                    "mobile": point.mobile,
                    "number_zones": number_zones,
                    "number_mobile": number_mobile,
                }
            )
    return rows


def recorded_unreachable(
    since: datetime | None, until: datetime | None, source: str | None
) -> RecordedUnreachable | None:
    """`Case.recorded_unreachable` from the three stored columns (all or nothing)."""
    if since is None or until is None:
        return None
    return RecordedUnreachable(since=since, until=until, source=source or "")


def case_from_row(row: CaseRow) -> Case:
    return Case(
        id=str(row.id),
        amount=row.amount,
        currency=row.currency,
        due_date=row.due_date,
        balance=row.balance,
        stage=Stage(row.stage),
        stage_started_on=row.stage_started_on,
        status=CaseStatus(row.status),
        flags=frozenset(CaseFlag(f) for f in row.flags),
        portfolio=row.portfolio,
        dispute_resolved_at=row.dispute_resolved_at,
        recorded_unreachable=recorded_unreachable(
            row.unreachable_since, row.unreachable_until, row.unreachable_source
        ),
        parties=tuple(
            Party(
                id=str(p.id),
                role=PartyRole(p.role),
                name=p.name,
                relation=p.relation,
                knows_of_debt=p.knows_of_debt,
                refused_contact=p.refused_contact,
                timezone=p.timezone,
                title=p.title,
                contact_points=tuple(_point_from_row(cp) for cp in p.contact_points),
            )
            for p in row.parties
        ),
    )


def _point_from_row(cp: ContactPointRow) -> ContactPoint:
    zones, mobile = point_facts(cp.mobile, cp.number_zones, cp.number_mobile)
    return ContactPoint(
        id=str(cp.id),
        kind=ContactKind(cp.kind),
        value=cp.value,
        consent=frozenset(Channel(c) for c in cp.consent),
        opted_out=frozenset(Channel(c) for c in cp.opted_out),
        validity=Validity(cp.validity),
        timezone=cp.timezone,
        do_not_call=cp.do_not_call,
        mobile=mobile,
        zones=zones,
    )


def history_from_rows(attempts: Sequence[AttemptRow], payments: Sequence[PaymentRow]) -> History:
    return History(
        attempts=tuple(
            Attempt(
                at=a.at,
                channel=Channel(a.channel),
                party_id=str(a.party_id),
                contact_point_id=str(a.contact_point_id),
                result=Result(a.result),
                id=str(a.id),
                promise_amount=a.promise_amount,
                promise_date=a.promise_date,
                callback_at=a.callback_at,
            )
            for a in attempts
        ),
        payments=tuple((p.at, p.amount) for p in payments),
    )


def case_from_document(doc: CaseIn, case_id: str, portfolio: str) -> Case:
    """A case given whole in a request (decision preview): ids are the refs, or positions."""
    return Case(
        id=case_id,
        amount=doc.amount,
        currency=doc.currency,
        due_date=doc.due_date,
        balance=doc.balance,
        stage=doc.stage,
        stage_started_on=doc.stage_started_on,
        status=doc.status,
        flags=frozenset(doc.flags),
        portfolio=portfolio,
        dispute_resolved_at=doc.dispute_resolved_at,
        parties=tuple(
            Party(
                id=p.ref or f"party-{i}",
                role=p.role,
                name=p.name,
                relation=p.relation,
                knows_of_debt=p.knows_of_debt,
                refused_contact=p.refused_contact,
                timezone=p.timezone,
                title=p.title,
                contact_points=tuple(
                    ContactPoint(
                        id=cp.ref or f"cp-{i}-{j}",
                        kind=cp.kind,
                        value=cp.value,
                        consent=frozenset(cp.consent),
                        opted_out=frozenset(cp.opted_out),
                        validity=cp.validity,
                        timezone=cp.timezone,
                        do_not_call=cp.do_not_call,
                        mobile=cp.mobile,
                    )
                    for j, cp in enumerate(p.contact_points)
                ),
            )
            for i, p in enumerate(doc.parties)
        ),
    )


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
