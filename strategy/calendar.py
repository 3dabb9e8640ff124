"""Local time: zones, working days and holidays, contact windows as UTC intervals.

Everything here is a pure function of its arguments, memoised because the same zone,
day and tier recur across thousands of decisions in a campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
from phonenumbers import timezone as phone_timezone

Interval = tuple[float, float]  # [start, end) in POSIX seconds

_UNKNOWN_ZONE = "Etc/Unknown"


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=100_000)
def phone_facts(e164: str) -> tuple[tuple[str, ...], bool | None]:
    """Candidate IANA zones and whether the number can take SMS, from `phonenumbers`.

    Zones are () when the library cannot place the number; mobile is None when unknown."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return (), None
    zones = tuple(z for z in phone_timezone.time_zones_for_number(number) if z != _UNKNOWN_ZONE)
    kind = phonenumbers.number_type(number)
    mobile: bool | None
    if kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        mobile = True
    elif kind in (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
    ):
        mobile = False
    else:
        mobile = None
    return zones, mobile


def local_date(ts: float, zone_name: str) -> date:
    return datetime.fromtimestamp(ts, zone(zone_name)).date()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# (zone, UTC day number) -> the zone's UTC offset in seconds all that UTC day, or None when
# the offset changes during it. Pure: a function of the zone database only.
_offsets: dict[tuple[str, int], int | None] = {}


def local_ordinal(ts: float, zone_name: str) -> int:
    """`local_date(ts, zone_name).toordinal()` without building a datetime: on a UTC day
    whose offset does not change, the local day is arithmetic on the offset."""
    utc_day = int(ts // 86400.0)
    key = (zone_name, utc_day)
    offset = _offsets.get(key, False)
    if offset is False:
        offset = _day_offset(zone_name, utc_day)
        if len(_offsets) > 100_000:
            _offsets.clear()
        _offsets[key] = offset
    if offset is None:
        return datetime.fromtimestamp(ts, zone(zone_name)).toordinal()
    return int((ts + offset) // 86400.0) + _EPOCH_ORDINAL


def _day_offset(zone_name: str, utc_day: int) -> int | None:
    tz = zone(zone_name)
    # Offsets change at most once a day in the zone database; checking three instants
    # also catches a change undone the same day.
    offsets = {
        datetime.fromtimestamp(utc_day * 86400.0 + s, tz).utcoffset() for s in (0, 43200, 86399)
    }
    if len(offsets) != 1:
        return None
    start = offsets.pop()
    if start is None or start.microseconds:
        return None
    return start.days * 86400 + start.seconds


@lru_cache(maxsize=200_000)
def day_start(zone_name: str, ordinal: int) -> float:
    """The instant local midnight begins the given day in the zone."""
    return datetime.combine(date.fromordinal(ordinal), time(), zone(zone_name)).timestamp()


@lru_cache(maxsize=64)
def _calendar(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision, years=year)


@lru_cache(maxsize=20_000)
def day_kind(country: str | None, subdivision: str | None, ordinal: int) -> str:
    """'holiday' (public holiday, not worked), 'workday_adjusted' (a weekend day made a
    working day, as China's 调休 does), 'weekend', or 'workday'."""
    day = date.fromordinal(ordinal)
    if country is None:
        return "weekend" if day.weekday() >= 5 else "workday"
    cal = _calendar(country, subdivision, day.year)
    working = cal.is_working_day(day)
    weekend = day.weekday() in cal.weekend
    if working:
        return "workday_adjusted" if weekend else "workday"
    # A public holiday is a holiday even when it falls on a weekend (2026-10-03).
    return "holiday" if day in cal else "weekend"


def local_interval(zone_name: str, ordinal: int, start_min: int, end_min: int) -> Interval:
    """A local span of one day as an instant interval (DST-correct via zoneinfo)."""
    tz = zone(zone_name)
    day = date.fromordinal(ordinal)
    start = datetime.combine(day, time(start_min // 60, start_min % 60), tz)
    end = (
        datetime.combine(day + timedelta(days=1), time(), tz)
        if end_min >= 24 * 60
        else datetime.combine(day, time(end_min // 60, end_min % 60), tz)
    )
    return start.timestamp(), end.timestamp()


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Intersection of two sorted lists of disjoint intervals."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
