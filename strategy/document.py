"""The strategy document supervisors write: a ladder of tiers and each tier's contact rules.

Pydantic models so the service can validate YAML/JSON and export a JSON Schema
(`strategy_json_schema()`). Structural errors are pydantic errors; what the document asks
for beyond its guardrail profile is checked by `strategy.validation.validate_strategy`.
"""

from __future__ import annotations

import re
from datetime import time
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from strategy.model import Channel, Disclosure, PartyRole, Stage

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def _in_order(members: frozenset[Enum]) -> list[Enum]:
    """A set's members in their enum's order: a set iterates in an order that depends on
    the process's string hashing, and a document's JSON (hence its digest, the version key
    of its compiled form) must not."""
    return sorted(members, key=lambda m: list(m.__class__.__members__.values()).index(m))


ChannelSet = Annotated[frozenset[Channel], PlainSerializer(_in_order, when_used="json")]
RoleSet = Annotated[frozenset[PartyRole], PlainSerializer(_in_order, when_used="json")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Span(_Model):
    """A local time span [start, end) within one day, written "09:00-12:00"."""

    start: time
    end: time

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            m = _SPAN.match(value.strip())
            if not m:
                raise ValueError(f"time span {value!r} must look like 09:00-12:00")
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            if h2 == 24 and m2 == 0:
                h2, m2 = 23, 59
            return {"start": time(h1, m1), "end": time(h2, m2)}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.end <= self.start:
            raise ValueError(f"span {self} ends before it starts")
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # Documents write spans as "09:00-12:00" (see `_parse`); the schema must accept that.
        as_object = handler(core_schema)
        as_text = {"type": "string", "pattern": _SPAN.pattern}
        return {"anyOf": [as_text, as_object]}

    @property
    def minutes(self) -> tuple[int, int]:
        return (self.start.hour * 60 + self.start.minute, self.end.hour * 60 + self.end.minute)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


Windows = dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], list[Span]]


class Scope(StrEnum):
    CASE = "case"
    PARTY = "party"
    CONTACT_POINT = "contact_point"


class Counted(StrEnum):
    ATTEMPTS = "attempts"
    CONVERSATIONS = "conversations"
    UNANSWERED = "unanswered"
    # Contact occasions: local days on which the scope was contacted on any of the cap's
    # channels. The source's cadence counts follow-ups, not messages: "every two days, by
    # email and phone" (账款催收 §一, §二) is one follow-up, which may use both channels
    # on the same local day. A contact on a day that already is an occasion adds none.
    OCCASIONS = "occasions"


class Cap(_Model):
    """At most `limit` counted attempts per scope, per `local_days` calendar days (today
    and the days before it, in the party's zone) or per rolling `rolling_hours`.

    With `count: occasions` the cap counts local days with a contact on its channels,
    not attempts: a contact is allowed on a day that already is an occasion, or while
    fewer than `limit` of the `local_days` days are. Occasions are local days, so such a
    cap needs `local_days`."""

    scope: Scope
    limit: Annotated[int, Field(ge=0)]
    count: Counted = Counted.ATTEMPTS
    channels: ChannelSet | None = None  # None: every channel
    roles: RoleSet | None = None  # None: every party role
    local_days: Annotated[int, Field(ge=1, le=366)] | None = None
    rolling_hours: Annotated[float, Field(gt=0, le=24 * 366)] | None = None

    @field_validator("rolling_hours")
    @classmethod
    def _occasions_are_days(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("count") is Counted.OCCASIONS:
            raise ValueError(
                "a cap with count occasions counts local days: give local_days, not rolling_hours"
            )
        return value

    @model_validator(mode="after")
    def _one_period(self) -> Cap:
        if (self.local_days is None) == (self.rolling_hours is None):
            raise ValueError("a cap needs exactly one of local_days or rolling_hours")
        return self

    def describe(self) -> str:
        chans = "/".join(sorted(self.channels)) if self.channels else "any channel"
        roles = "/".join(sorted(self.roles)) if self.roles else "any party"
        period = (
            f"{self.local_days} local day(s)"
            if self.local_days
            else f"{self.rolling_hours:g} rolling hours"
        )
        return f"{self.limit} {self.count} per {self.scope} ({chans}, {roles}) in {period}"


class Spacing(_Model):
    scope: Scope
    minutes: Annotated[int, Field(ge=0)]
    channels: ChannelSet | None = None


class ContactWhen(StrEnum):
    ALWAYS = "always"
    NEVER = "never"
    WHEN_DEBTOR_UNREACHABLE = "when_debtor_unreachable"
    IF_KNOWS_OF_DEBT = "if_knows_of_debt"


class PartyRule(_Model):
    contact: ContactWhen = ContactWhen.ALWAYS
    disclosure: Disclosure = Disclosure.NONE
    # Raised disclosure for a third party who already knows of the debt (source, DPD 6-17).
    disclosure_if_knows_debt: Disclosure | None = None
    # Raised disclosure once the debtor cannot be reached (source, DPD 18-30).
    disclosure_if_debtor_unreachable: Disclosure | None = None
    channels: ChannelSet | None = None  # None: the tier's channels


class Unreachable(_Model):
    """The debtor counts as unreachable after `min_attempts` attempts in `days` local days
    without a right-party conversation, or when none of their contact points is usable."""

    min_attempts: Annotated[int, Field(ge=1)] = 6
    days: Annotated[int, Field(ge=1)] = 3


class Preference(StrEnum):
    MORNING = "morning"
    MONDAY = "monday"
    EARLY_MONTH = "early_month"
    AVOID_MONTH_END = "avoid_month_end"
    AVOID_LAST_HOUR = "avoid_last_hour"
    AVOID_WEEKEND = "avoid_weekend"


class Action(StrEnum):
    NOTIFY_SUPERVISOR = "notify_supervisor"
    NOTIFY_MANAGER = "notify_manager"
    NOTIFY_GENERAL_MANAGER = "notify_general_manager"
    ACCOUNT_LOCK = "account_lock"
    DEMAND_LETTER = "demand_letter"
    STATEMENT_OF_ACCOUNT = "statement_of_account"
    LAWYER_LETTER = "lawyer_letter"
    FIELD_VISIT = "field_visit"
    REFRESH_CONTACT_DATA = "refresh_contact_data"
    CASE_REVIEW = "case_review"


class Escalation(_Model):
    """Emit a task when every given condition holds."""

    action: Action
    min_dpd: int | None = None
    min_days_in_stage: int | None = None
    # No right-party conversation or promise for this many days (since tier entry at most).
    days_without_progress: Annotated[int, Field(ge=1)] | None = None
    requires_approval: bool = False
    note: str = ""


class Range(_Model):
    min: int | None = None
    max: int | None = None

    def contains(self, value: int) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Tier(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z0-9_\-]{1,40}$")]
    name: str = ""
    dpd: Range | None = None
    stage: Stage | None = None
    days_in_stage: Range | None = None
    channels: ChannelSet = frozenset({Channel.VOICE, Channel.SMS})
    windows: Windows = Field(default_factory=dict)
    skip_holidays: bool = True
    parties: dict[PartyRole, PartyRule] = Field(default_factory=dict)
    debtor_unreachable: Unreachable = Field(default_factory=Unreachable)
    caps: tuple[Cap, ...] = ()
    spacing: tuple[Spacing, ...] = ()
    quiet_hours_after_conversation: Annotated[float, Field(ge=0)] = 0
    daily_target: Annotated[int, Field(ge=0)] | None = None  # source's "3+ a day": a goal
    preferences: tuple[Preference, ...] = ()
    hard_preferences: tuple[Preference, ...] = ()  # turned into bans for this tier
    escalations: tuple[Escalation, ...] = ()
    templates: dict[Channel, str] = Field(default_factory=dict)
    guidance: tuple[str, ...] = ()  # what the agent should do on this tier
    narrowed: tuple[str, ...] = ()  # where a preset departs from its source, and why

    @model_validator(mode="after")
    def _selects_something(self) -> Tier:
        if self.dpd is None and self.stage is None and self.days_in_stage is None:
            raise ValueError(f"tier {self.id!r} needs dpd, stage or days_in_stage to select it")
        return self


class Strategy(_Model):
    name: str
    version: int = 1
    profile: str
    ladder: Literal["dpd", "stage"] = "dpd"
    timezone: str = "UTC"  # the portfolio's zone: days past due and the last-resort zone
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    promise_grace_days: Annotated[int, Field(ge=0, le=60)] = 2
    description: str = ""
    tiers: tuple[Tier, ...]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("tiers")
    @classmethod
    def _unique(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        if not tiers:
            raise ValueError("a strategy needs at least one tier")
        seen: set[str] = set()
        for tier in tiers:
            if tier.id in seen:
                raise ValueError(f"tier id {tier.id!r} is used twice")
            seen.add(tier.id)
        return tiers

    def tier(self, tier_id: str) -> Tier:
        for tier in self.tiers:
            if tier.id == tier_id:
                return tier
        raise KeyError(tier_id)


def strategy_json_schema() -> dict[str, Any]:
    """The JSON Schema every strategy document (and shipped preset) validates against."""
    return Strategy.model_json_schema()
