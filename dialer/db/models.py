"""Tables. Timestamps are aware UTC instants; money is exact; ids are UUIDs.

Case, party and contact point ids are derived (uuid5) from the portfolio, the case's
external reference and the party/contact keys, so an import can upsert a whole case in
bulk without reading ids back, and a re-import lands on the same rows.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dialer.db.types import JSONType, Money, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        Decimal: Money(),
        dict[str, Any]: JSONType,
    }


class Portfolio(Base):
    __tablename__ = "portfolios"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile: Mapped[str] = mapped_column(String(64))  # guardrail profile; admin only
    country: Mapped[str] = mapped_column(String(2))  # default region for phone numbers
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    active_strategy_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("strategies.id", use_alter=True, name="fk_portfolios_active_strategy")
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CaseRow(Base):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("portfolio", "external_ref", name="uq_cases_portfolio_external_ref"),
        Index("ix_cases_portfolio_status_tier", "portfolio", "status", "tier"),
        Index("ix_cases_agent", "agent"),
        Index("ix_cases_external_ref", "external_ref"),  # a case by reference (0010)
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    portfolio: Mapped[str] = mapped_column(ForeignKey("portfolios.name"))
    external_ref: Mapped[str] = mapped_column(String(128))
    amount: Mapped[Decimal]
    balance: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(32))
    stage_started_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    flags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    country: Mapped[str | None] = mapped_column(String(2))
    dispute_resolved_at: Mapped[datetime | None]
    tier: Mapped[str | None] = mapped_column(String(40))
    team: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(128))
    # The strategy version a case in progress finishes on (`finish_on_old`); None: active.
    strategy_version_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("strategies.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The debtor recorded unreachable (0008): since, until (expiry) and source, all or none.
    unreachable_since: Mapped[datetime | None]
    unreachable_until: Mapped[datetime | None]
    unreachable_source: Mapped[str | None] = mapped_column(String(64))

    parties: Mapped[list[PartyRow]] = relationship(
        back_populates="case", order_by="PartyRow.position", cascade="all, delete-orphan"
    )


class PartyRow(Base):
    __tablename__ = "parties"
    __table_args__ = (UniqueConstraint("case_id", "key", name="uq_parties_case_key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    relation: Mapped[str | None] = mapped_column(String(64))
    knows_of_debt: Mapped[bool] = mapped_column(Boolean, default=False)
    refused_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(100))

    case: Mapped[CaseRow] = relationship(back_populates="parties")
    contact_points: Mapped[list[ContactPointRow]] = relationship(
        back_populates="party", order_by="ContactPointRow.position", cascade="all, delete-orphan"
    )


class ContactPointRow(Base):
    __tablename__ = "contact_points"
    __table_args__ = (
        UniqueConstraint("party_id", "kind", "value", name="uq_contact_points_party_value"),
        Index("ix_contact_points_case_id", "case_id"),
        Index("ix_contact_points_value", "value"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    party_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id", ondelete="CASCADE"))
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(254))
    consent: Mapped[list[str]] = mapped_column(JSONType, default=list)
    opted_out: Mapped[list[str]] = mapped_column(JSONType, default=list)
    validity: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    mobile: Mapped[bool | None] = mapped_column(Boolean)  # as the caller said; None: not said
    # The number's facts as `phonenumbers` gives them, stored when the point is written
    # (`dialer.facts.convert.number_facts`): candidate zones (NULL: not stored, derive them at
    # decision time) and whether it is a mobile line (NULL: unknown).
    number_zones: Mapped[list[str] | None] = mapped_column(JSONType)
    number_mobile: Mapped[bool | None] = mapped_column(Boolean)

    party: Mapped[PartyRow] = relationship(back_populates="contact_points")


class AttemptRow(Base):
    """One contact attempt, shaped for dispatch and webhooks (later issues)."""

    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_case_id_at", "case_id", "at"),
        Index("ix_attempts_campaign_id_state", "campaign_id", "state"),
        Index("ix_attempts_state_reserved_at", "state", "reserved_at"),
        # lists and exports of results (0010): by instant, and promises by due day
        Index("ix_attempts_at_id", "at", "id"),
        Index(
            "ix_attempts_promise_date",
            "promise_date",
            "id",
            postgresql_where=text("promise_date IS NOT NULL"),
            sqlite_where=text("promise_date IS NOT NULL"),
        ),
        # Only a dialled attempt has a provider id, and a dialled one is never not_sent.
        CheckConstraint("state <> 'not_sent' OR provider_sid IS NULL", name="not_sent_no_sid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    party_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id", ondelete="CASCADE"))
    contact_point_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contact_points.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(8))
    # planned / reserved / sent / in_progress / completed / failed / unknown / refused
    state: Mapped[str] = mapped_column(String(16))
    result: Mapped[str] = mapped_column(String(24), default="pending")  # strategy.model.Result
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    strategy_version_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("strategies.id"))
    profile: Mapped[str | None] = mapped_column(String(64))
    allowed_by: Mapped[str | None] = mapped_column(Text)
    planned_at: Mapped[datetime | None]
    reserved_at: Mapped[datetime | None]
    at: Mapped[datetime]
    promise_amount: Mapped[Decimal | None]
    promise_date: Mapped[date | None] = mapped_column(Date)
    callback_at: Mapped[datetime | None]
    last_sequence_number: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    # dispatch (0002): what the planner and the worker recorded
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    not_before: Mapped[datetime | None]  # the planned send time
    disclosure: Mapped[str | None] = mapped_column(String(16))
    voicemail_disclosure: Mapped[str | None] = mapped_column(String(16))
    template_key: Mapped[str | None] = mapped_column(String(200))
    append_opt_out: Mapped[bool | None] = mapped_column(Boolean)
    refusal: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # every reason, at dispatch
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    # webhooks (0003): what the provider's callbacks reported
    answered_by: Mapped[str | None] = mapped_column(String(32))  # AMD: human, machine_*, ...
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    provider_status: Mapped[str | None] = mapped_column(String(24))  # busy, no-answer, ...
    # the fence (0006): the worker holding a reserved attempt, until when; when it dialled
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    dialing_at: Mapped[datetime | None]
    # a person answered an agent-mode call and no collector was free (0012)
    abandoned_at: Mapped[datetime | None]


class OutcomeRow(Base):
    """An agent's disposition of a contact (with or without a recorded attempt)."""

    __tablename__ = "outcomes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    attempt_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("attempts.id"))
    result: Mapped[str] = mapped_column(String(24))
    promise_amount: Mapped[Decimal | None]
    promise_date: Mapped[date | None] = mapped_column(Date)
    callback_at: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime]


class PaymentRow(Base):
    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    amount: Mapped[Decimal]


class StrategyRow(Base):
    """One version of a strategy document; versions are never updated once active."""

    __tablename__ = "strategies"
    __table_args__ = (
        UniqueConstraint("portfolio", "name", "version", name="uq_strategies_version"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    portfolio: Mapped[str] = mapped_column(ForeignKey("portfolios.name"))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # draft / active / retired
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    teams: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # tier id -> team
    in_progress_policy: Mapped[str] = mapped_column(String(16))  # finish_on_old / reevaluate
    digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    activated_by: Mapped[str | None] = mapped_column(String(128))


class TaskRow(Base):
    """An escalation; created exactly once per (case, key)."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("case_id", "key", name="uq_tasks_case_key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(40))
    requires_approval: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)  # open/approved/rejected/done
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    completed_by: Mapped[str | None] = mapped_column(String(128))
    completed_at: Mapped[datetime | None]


class CampaignRow(Base):
    __tablename__ = "campaigns"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    portfolio: Mapped[str] = mapped_column(ForeignKey("portfolios.name"))
    filter: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    window: Mapped[str | None] = mapped_column(String(16))  # local "09:00-12:00"
    pacing_cps: Mapped[float] = mapped_column(Float, default=1.0)
    max_in_progress: Mapped[int | None] = mapped_column(Integer)  # None: no limit
    # draft / running / paused / cancelled / done
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    plan_cursor: Mapped[str | None] = mapped_column(String(36))  # last case id planned
    plan_done: Mapped[bool] = mapped_column(Boolean, default=False)
    plan_lease_until: Mapped[datetime | None]
    plan_lease_owner: Mapped[str | None] = mapped_column(String(64))
    cases_seen: Mapped[int] = mapped_column(Integer, default=0)
    planned: Mapped[int] = mapped_column(Integer, default=0)
    refused_by_rule: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # domain.agents.DialingMode: ivr (automated flow) or an agent mode
    mode: Mapped[str] = mapped_column(String(16), default="ivr", server_default="ivr")
    wrap_up_limit_s: Mapped[int | None] = mapped_column(Integer)  # None: no limit


class OutboxRow(Base):
    """A job to publish once the transaction that wrote it has committed."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "available_at",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime]
    available_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class PacingRow(Base):
    """A campaign's next free dispatch slot: the rate holds across every worker process."""

    __tablename__ = "pacing"

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    next_slot_at: Mapped[datetime]


class ProtectiveFactRow(Base):
    """When and by whom a protective fact was recorded (architecture invariant 8).

    The fact itself lives where the engine reads it (a case flag, a party's refusal, a
    contact point's opt-out or do-not-call); this row says who recorded it, so an import
    that would clear it can report "kept: cease, recorded 2026-12-01 by ...". A consent
    revocation has no column of its own: this row is its record. A supervisor's clearing
    deletes the row (the audit log keeps both events)."""

    __tablename__ = "protective_facts"
    __table_args__ = (Index("ix_protective_facts_case_id", "case_id"),)

    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    fact: Mapped[str] = mapped_column(String(40), primary_key=True)  # cease, opted_out:sms
    entity: Mapped[str] = mapped_column(String(16))  # case / party / contact_point
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(128))  # api, import, inbound sms SM..., agent


class ApiKeyRow(Base):
    """An API key. Its name is its holder's identity (an agent's cases are the ones
    assigned to that name), so at most one active key holds a name."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index(
            "uq_api_keys_active_name",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the whole key
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditRow(Base):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(128), index=True)
    before_digest: Mapped[str | None] = mapped_column(String(64))
    after_digest: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class WebhookEventRow(Base):
    """Every authentic provider callback, kept once per idempotency key. `status` is
    `received`, or `unmatched` (no attempt known: kept for the reconciler) until resolved."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_attempt_id", "attempt_id"),
        Index("ix_webhook_events_provider_sid", "provider_sid"),
        Index(
            "ix_webhook_events_unmatched",
            "received_at",
            postgresql_where=text("status = 'unmatched'"),
            sqlite_where=text("status = 'unmatched'"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # voice_status, amd, gather, sms_status, ...
    attempt_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # no FK: may name nothing
    provider_sid: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType)


class InboundMessageRow(Base):
    """An SMS received from a number on a case (one row per case the number belongs to;
    no case when the number is unknown)."""

    __tablename__ = "inbound_messages"
    __table_args__ = (Index("ix_inbound_messages_case_id", "case_id", "received_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    contact_point_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contact_points.id", ondelete="CASCADE")
    )
    provider_sid: Mapped[str | None] = mapped_column(String(64))
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # stop, start, help, text
    received_at: Mapped[datetime]


class DeadLetterRow(Base):
    """A job the embedded (in-process) queue gave up on, kept where every process sees it:
    the API and `dialer dead-letters` list it, and a replay hands it back through the
    outbox to whichever process runs the worker. (RabbitMQ keeps its own dead letters.)"""

    __tablename__ = "dead_letters"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    reason: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    died_at: Mapped[datetime]


class PlanRefusalRow(Base):
    """Why a campaign's planner planned nothing for a case: the rules that refused it, in
    plain words, and the first instant the engine named when it would allow a contact.
    One row per case per campaign (0010); the case's timeline shows it."""

    __tablename__ = "plan_refusals"
    __table_args__ = (Index("ix_plan_refusals_case_id", "case_id", "planned_at"),)

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    planned_at: Mapped[datetime]
    rules: Mapped[list[str]] = mapped_column(JSONType)
    reason: Mapped[str] = mapped_column(Text)
    next_allowed: Mapped[datetime | None]


class AgentRow(Base):
    """A collector at the desk: the `agent` key whose name is `name`, their state since
    when, where bridged calls reach them, and the call held for them or in their hands."""

    __tablename__ = "agents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128), unique=True)  # the agent key's name
    endpoint: Mapped[str | None] = mapped_column(String(255))  # client:x | +E.164 | sip:..
    state: Mapped[str] = mapped_column(String(16))  # domain.agents.AgentState
    state_since: Mapped[datetime]
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    attempt_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the call held or in hand
    wrap_up_due_at: Mapped[datetime | None]  # wrap-up owed until then, set when a call ends


class AgentCampaignRow(Base):
    """An agent a supervisor assigned to a campaign: the worker holds only a campaign's
    assigned agents for its calls (a campaign with none takes any available agent)."""

    __tablename__ = "agent_campaigns"
    __table_args__ = (Index("ix_agent_campaigns_agent", "agent_id"),)

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    assigned_at: Mapped[datetime]
    assigned_by: Mapped[str] = mapped_column(String(128))
