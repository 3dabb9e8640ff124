"""Local time: zones, working days and holidays, contact windows as UTC intervals.

Everything here is a pure function of its arguments, memoised because the same zone,
day and tier recur across thousands of decisions in a campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    return number_facts(number)


def number_facts(
    number: phonenumbers.PhoneNumber, kind: int | None = None
) -> tuple[tuple[str, ...], bool | None]:
    """`phone_facts` of a number already parsed (a caller that parsed it keeps one parse;
    one that has its `phonenumbers.number_type`, a costly lookup, passes it as `kind`)."""
    zones = tuple(z for z in phone_timezone.time_zones_for_number(number) if z != _UNKNOWN_ZONE)
    if kind is None:
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


@dataclass(frozen=True, slots=True)
class HolidayNotice:
    """One year's statutory holiday schedule as the issuing authority published it.

    `breaks` are the days off, first and last day inclusive, weekend days inside a break
    included (the notice counts them: "10月1日（周四）至7日（周三）放假调休，共7天");
    `workdays` are the weekend days made working days (调休上班)."""

    country: str
    year: int
    title: str
    number: str  # the document number, e.g. 国办发明电〔2025〕7号
    published: date
    breaks: tuple[tuple[str, date, date], ...]
    workdays: tuple[date, ...]


def _d(year: int, month: int, day: int) -> date:
    return date(year, month, day)


# China: the State Council General Office's notice for each year (国务院办公厅关于<year>年
# 部分节假日安排的通知). A holiday list (the `holidays` library) gives the statutory days and
# their in-lieu days but not the weekend days inside a break, so the schedule is shipped
# as the notice states it. A new year's notice (published each November) is added here,
# with its number; a year without one is decided on the library's list, with a warning.
CN_NOTICES: dict[int, HolidayNotice] = {
    2025: HolidayNotice(
        country="CN",
        year=2025,
        title="国务院办公厅关于2025年部分节假日安排的通知",
        number="国办发明电〔2024〕12号",
        published=_d(2024, 11, 12),
        breaks=(
            ("元旦", _d(2025, 1, 1), _d(2025, 1, 1)),
            ("春节", _d(2025, 1, 28), _d(2025, 2, 4)),
            ("清明节", _d(2025, 4, 4), _d(2025, 4, 6)),
            ("劳动节", _d(2025, 5, 1), _d(2025, 5, 5)),
            ("端午节", _d(2025, 5, 31), _d(2025, 6, 2)),
            ("国庆节、中秋节", _d(2025, 10, 1), _d(2025, 10, 8)),
        ),
        workdays=(
            _d(2025, 1, 26),
            _d(2025, 2, 8),
            _d(2025, 4, 27),
            _d(2025, 9, 28),
            _d(2025, 10, 11),
        ),
    ),
    2026: HolidayNotice(
        country="CN",
        year=2026,
        title="国务院办公厅关于2026年部分节假日安排的通知",
        number="国办发明电〔2025〕7号",
        published=_d(2025, 11, 4),
        breaks=(
            ("元旦", _d(2026, 1, 1), _d(2026, 1, 3)),
            ("春节", _d(2026, 2, 15), _d(2026, 2, 23)),
            ("清明节", _d(2026, 4, 4), _d(2026, 4, 6)),
            ("劳动节", _d(2026, 5, 1), _d(2026, 5, 5)),
            ("端午节", _d(2026, 6, 19), _d(2026, 6, 21)),
            ("中秋节", _d(2026, 9, 25), _d(2026, 9, 27)),
            ("国庆节", _d(2026, 10, 1), _d(2026, 10, 7)),
        ),
        workdays=(
            _d(2026, 1, 4),
            _d(2026, 2, 14),
            _d(2026, 2, 28),
            _d(2026, 5, 9),
            _d(2026, 9, 20),
            _d(2026, 10, 10),
        ),
    ),
}
# Countries whose days off are set by a yearly notice, not by a fixed rule: deciding in a
# year without its notice is a guess, and the decision says so.
NOTICES: dict[str, dict[int, HolidayNotice]] = {"CN": CN_NOTICES}


def notice_for(country: str | None, year: int) -> HolidayNotice | None:
    """The published schedule of `country` for `year`, if one is shipped."""
    by_year = NOTICES.get(country) if country is not None else None
    return by_year.get(year) if by_year is not None else None


def schedule_missing(country: str | None, year: int) -> bool:
    """True when `country` sets its holidays by a yearly notice and none is shipped for
    `year`: the days are then the `holidays` library's list, without the notice's
    weekend days inside a break or its make-up working days."""
    return country is not None and country in NOTICES and year not in NOTICES[country]


@lru_cache(maxsize=64)
def _notice_days(country: str, year: int) -> tuple[frozenset[int], frozenset[int]] | None:
    """(ordinals of the days off, ordinals of the make-up working days) of a notice."""
    notice = notice_for(country, year)
    if notice is None:
        return None
    off: set[int] = set()
    for _name, first, last in notice.breaks:
        off.update(range(first.toordinal(), last.toordinal() + 1))
    return frozenset(off), frozenset(d.toordinal() for d in notice.workdays)


@lru_cache(maxsize=64)
def _calendar(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision, years=year)


@lru_cache(maxsize=20_000)
def day_kind(country: str | None, subdivision: str | None, ordinal: int) -> str:
    """'holiday' (public holiday, not worked), 'workday_adjusted' (a weekend day made a
    working day, as China's 调休 does), 'weekend', or 'workday'.

    Where a yearly notice is shipped (`NOTICES`), it decides: every day of a break is a
    holiday, weekend days inside it included, and its make-up days are working days.
    Elsewhere the `holidays` library's calendar does."""
    day = date.fromordinal(ordinal)
    weekend_day = day.weekday() >= 5
    if country is None:
        return "weekend" if weekend_day else "workday"
    notice = _notice_days(country, day.year)
    if notice is not None:
        off, workdays = notice
        if ordinal in off:
            return "holiday"
        if ordinal in workdays:
            return "workday_adjusted"
        return "weekend" if weekend_day else "workday"
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
