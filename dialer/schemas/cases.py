"""Case documents: the create-case body is also one line of a JSON-lines import."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import Field, field_validator

from dialer.schemas.common import CurrencyCode, Day, In, Instant, Money, OptionalZone, Out
from strategy.model import (
    CaseFlag,
    CaseStatus,
    Channel,
    ContactKind,
    PartyRole,
    Stage,
    Validity,
)

Ref = Annotated[str, Field(min_length=1, max_length=128)]
Zone = Annotated[OptionalZone, Field(default=None, description="IANA zone; leave empty if unknown")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]


class ContactPointIn(In):
    ref: Ref | None = Field(default=None, description="an id for previews; ignored on store")
    kind: ContactKind
    value: Annotated[str, Field(min_length=1, max_length=254)]
    consent: frozenset[Channel] = frozenset()
    opted_out: frozenset[Channel] = frozenset()
    validity: Validity = Validity.UNVERIFIED
    timezone: Zone = None
    do_not_call: bool = False
    mobile: bool | None = None


class PartyIn(In):
    ref: Ref | None = Field(default=None, description="stable key within the case")
    role: PartyRole
    name: Annotated[str, Field(max_length=200)] = ""
    relation: str | None = None
    knows_of_debt: bool = False
    refused_contact: bool = False
    timezone: Zone = None
    title: str | None = None
    contact_points: list[ContactPointIn] = Field(default_factory=list, max_length=50)


class CaseIn(In):
    external_ref: Ref
    portfolio: str | None = Field(default=None, description="defaults to the import's portfolio")
    amount: Money
    currency: CurrencyCode
    due_date: Day
    balance: Money | None = None
    stage: Stage = Stage.COLLECTION
    stage_started_on: Day | None = None
    status: CaseStatus = CaseStatus.OPEN
    flags: frozenset[CaseFlag] = frozenset()
    country: Country | None = None
    dispute_resolved_at: Instant | None = None
    parties: list[PartyIn] = Field(min_length=1, max_length=50)


class CasePatch(In):
    amount: Money | None = None
    balance: Money | None = None
    currency: CurrencyCode | None = None
    due_date: Day | None = None
    stage: Stage | None = None
    stage_started_on: Day | None = None
    status: CaseStatus | None = None
    flags: frozenset[CaseFlag] | None = None
    country: Country | None = None
    dispute_resolved_at: Instant | None = None


class PartyPatch(In):
    name: Annotated[str, Field(max_length=200)] | None = None
    relation: str | None = None
    knows_of_debt: bool | None = None
    refused_contact: bool | None = None
    timezone: Zone = None
    title: str | None = None


class ContactPointPatch(In):
    consent: frozenset[Channel] | None = None
    opted_out: frozenset[Channel] | None = None
    validity: Validity | None = None
    timezone: Zone = None
    do_not_call: bool | None = None
    mobile: bool | None = None


class PartyOrPointFact(StrEnum):
    """Protective facts of a party or a contact point (a case's are its `CaseFlag`s)."""

    REFUSED_CONTACT = "refused_contact"
    OPTED_OUT = "opted_out"
    CONSENT_REVOKED = "consent_revoked"


class ProtectiveClearIn(In):
    """One protective fact to clear; `do_not_call` with `contact_point_id` is the point's."""

    fact: CaseFlag | PartyOrPointFact
    reason: Annotated[
        str, Field(min_length=1, max_length=2000, pattern=r"\S", description="why it is cleared")
    ]
    party_id: uuid.UUID | None = Field(default=None, description="for refused_contact")
    contact_point_id: uuid.UUID | None = Field(
        default=None, description="for opted_out, consent_revoked, a point's do_not_call"
    )
    channel: Channel | None = Field(default=None, description="for opted_out, consent_revoked")


class AssignmentIn(In):
    team: str | None = None
    agent: str | None = None


class ContactPointOut(Out):
    id: uuid.UUID
    kind: ContactKind
    value: str
    consent: list[Channel]
    opted_out: list[Channel]
    validity: Validity
    timezone: str | None
    do_not_call: bool
    mobile: bool | None


class PartyOut(Out):
    id: uuid.UUID
    key: str
    role: PartyRole
    name: str
    relation: str | None
    knows_of_debt: bool
    refused_contact: bool
    timezone: str | None
    title: str | None
    contact_points: list[ContactPointOut]


class CaseSummaryOut(Out):
    id: uuid.UUID
    portfolio: str
    external_ref: str
    amount: Decimal
    balance: Decimal | None
    currency: str
    due_date: date
    stage: Stage
    status: CaseStatus
    tier: str | None
    team: str | None
    agent: str | None


class CaseOut(CaseSummaryOut):
    stage_started_on: date | None
    flags: list[CaseFlag]
    country: str | None
    dispute_resolved_at: datetime | None
    strategy_version_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    # The debtor recorded unreachable (PUT /cases/{id}/unreachable); null: nothing recorded.
    unreachable_since: datetime | None = None
    unreachable_until: datetime | None = None
    unreachable_source: str | None = None
    parties: list[PartyOut]


class UnreachableIn(In):
    """The debtor stated unreachable since an instant (a skip-trace found no working
    contact, mail came back), from a named source, until an expiry at most
    `dialer.services.reachability.MAX_RECORDED` ahead."""

    since: Instant = Field(description="unreachable since this instant (not in the future)")
    until: Instant = Field(description="the record expires here (in the future, bounded)")
    source: str = Field(
        min_length=1,
        max_length=64,
        description="where the finding comes from, e.g. skip-trace, returned mail",
    )

    @field_validator("source")
    @classmethod
    def _source_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name the source of the finding")
        return value.strip()
