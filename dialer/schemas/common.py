"""The building blocks of every request body: `In` (unknown fields refused), the instants
and days a request may name, bounded integers, IANA zones, guardrail profiles, currencies,
money.
(Text the database cannot store is refused before a body is parsed: `dialer.api.text`.)"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from strategy.guardrails import PROFILES


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None  # opaque; pass back as ?cursor= for the next page


# --- instants and days --------------------------------------------------------------------
# A request's instants and days lie in these years: wide enough for any debt's history and
# any plan, narrow enough that the engine's windows, look-backs and next-allowed searches
# (days to weeks either side) never leave what `datetime` and the databases hold.
FIRST_YEAR, LAST_YEAR = 1900, 2099
_YEAR = r"(19|20)\d\d"
# RFC 3339 date-time (OpenAPI's `format: date-time`), with its offset: no Unix timestamps
# (pydantic would read `0` or `"0"` as 1970-01-01), no naive local times.
_DATE_TIME = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$", re.IGNORECASE
)
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")


def _date_time_text(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise ValueError(
            "a date-time is RFC 3339 text with an offset, e.g. 2026-12-01T10:00:00+08:00"
            " (not a number)"
        )
    return value


def _date_text(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("a date is ISO 8601 text, e.g. 2026-12-01 (not a number)")
    return value


def _in_years(value: date) -> Any:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must lie in the years {FIRST_YEAR} to {LAST_YEAR}")
    return value


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_date_time_text),
    AfterValidator(_in_years),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": f"^{_YEAR}-"}),
]
Day = Annotated[
    date,
    BeforeValidator(_date_text),
    AfterValidator(_in_years),
    WithJsonSchema({"type": "string", "format": "date", "pattern": f"^{_YEAR}-"}),
]

# --- integers -----------------------------------------------------------------------------
# A BIGINT column's largest value: past it no row exists and no driver sends the number.
INT64_MAX = 2**63 - 1


# --- time zones ---------------------------------------------------------------------------
@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name tzdata knows, sorted (the OpenAPI enum of a zone field)."""
    return tuple(sorted(_zone_set()))


@cache
def _zone_set() -> frozenset[str]:
    return frozenset(available_timezones())


def check_zone(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def _known_zone(value: str | None) -> str | None:
    checked = check_zone(value)
    if checked is not None and checked not in _zone_set():
        raise ValueError(f"unknown time zone {value!r}")
    return checked


def _zone_schema(*, empty: bool) -> dict[str, Any]:
    names = ["", *zone_names()] if empty else list(zone_names())
    return {"type": "string", "enum": names, "description": "an IANA time zone"}


# A zone a request names: one of tzdata's IANA names (declared as the OpenAPI enum).
ZoneName = Annotated[str, AfterValidator(_known_zone), WithJsonSchema(_zone_schema(empty=False))]
# A party's or contact point's zone: empty or null when unknown.
OptionalZone = Annotated[
    str | None,
    AfterValidator(_known_zone),
    WithJsonSchema({"anyOf": [_zone_schema(empty=True), {"type": "null"}]}),
]


# --- guardrail profiles ------------------------------------------------------------------
def _known_profile(value: str) -> str:
    if value not in PROFILES:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown guardrail profile {value!r} (known: {known})")
    return value


# A guardrail profile's name (strategy.guardrails.PROFILES, declared as the OpenAPI enum).
ProfileName = Annotated[
    str,
    AfterValidator(_known_profile),
    WithJsonSchema({"type": "string", "enum": sorted(PROFILES)}),
]


# --- currencies ---------------------------------------------------------------------------
@cache
def currency_codes() -> tuple[str, ...]:
    """ISO 4217's alphabetic codes (pycountry's copy of the standard), sorted."""
    return tuple(sorted(_currency_set()))


@cache
def _currency_set() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def _known_currency(value: str) -> str:
    if value not in _currency_set():
        raise ValueError(f"not an ISO 4217 currency code: {value!r} (e.g. CNY, USD, EUR)")
    return value


# A currency a request names: an ISO 4217 code (declared as the OpenAPI enum), upper case.
CurrencyCode = Annotated[
    str,
    AfterValidator(_known_currency),
    WithJsonSchema({"type": "string", "enum": list(currency_codes()), "description": "ISO 4217"}),
]


# --- money --------------------------------------------------------------------------------
# NUMERIC(18, 2): 16 digits before the point, 2 after; as a JSON string or number.
_MONEY_TEXT = re.compile(r"^\d{1,16}(\.\d{1,2})?$")
# the same, above zero (no leading zeros): 1, 0.01, 12.50
_POSITIVE_MONEY_TEXT = re.compile(r"^([1-9]\d{0,15}(\.\d{1,2})?|0\.(0[1-9]|[1-9]\d?))$")


def _money_text(pattern: re.Pattern[str]) -> BeforeValidator:
    def check(value: object) -> object:
        if isinstance(value, str) and not pattern.match(value):
            raise ValueError(
                "an amount is written like 1234.50: at most 16 digits, then 2 decimals"
            )
        return value

    return BeforeValidator(check)


def _money_schema(lower: str, pattern: re.Pattern[str]) -> WithJsonSchema:
    # the largest double below 10**16: a larger JSON number is read as 10**16, 17 digits
    number = {"type": "number", lower: 0, "maximum": 9999999999999998, "multipleOf": 0.01}
    return WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": pattern.pattern}]})


# An amount of money: zero or more, and more than zero.
Money = Annotated[
    Decimal,
    _money_text(_MONEY_TEXT),
    Field(ge=0, max_digits=18, decimal_places=2),
    _money_schema("minimum", _MONEY_TEXT),
]
PositiveMoney = Annotated[
    Decimal,
    _money_text(_POSITIVE_MONEY_TEXT),
    Field(gt=0, max_digits=18, decimal_places=2),
    _money_schema("exclusiveMinimum", _POSITIVE_MONEY_TEXT),
]
