"""Working days and holidays: public holidays are skipped, China's adjusted working
weekend days (调休) take Monday's windows. China's days off are the State Council's
notice for each year (every day of a break, weekend days included); elsewhere, and in a
year without a shipped notice (with a warning), the `holidays` library's calendar."""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import pytest

from strategy.calendar import day_kind, notice_for
from strategy.presets import load_preset
from tests.strategy.builders import (
    SMS,
    US_NY_MOBILE,
    VOICE,
    at,
    case,
    debtor,
    is_allowed,
    phone,
    refused_rules,
    run,
    strategy,
    tier,
)

DUE = date(2026, 1, 5)
WORKDAYS = {d: ["09:00-12:00", "14:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
CN_WORKDAYS = strategy(tier(windows=WORKDAYS), holiday_country="CN")


def test_adjusted_working_saturday_is_a_working_day_cn() -> None:
    # 2026-02-14 is a Saturday worked in place of a Spring Festival day.
    decision = run(case(due=DUE), None, at(2026, 2, 14, 10, 0), CN_WORKDAYS)
    assert is_allowed(decision, "m1", VOICE)
    action = decision.allowed_for("m1", VOICE)
    assert action is not None and action.window_end == at(2026, 2, 14, 12, 0)


def test_adjusted_working_saturday_takes_mondays_windows() -> None:
    mondays_only = strategy(tier(windows={"mon": ["15:00-16:00"]}), holiday_country="CN")
    assert is_allowed(run(case(due=DUE), None, at(2026, 2, 14, 15, 30), mondays_only), "m1", VOICE)
    assert not run(case(due=DUE), None, at(2026, 2, 14, 10, 0), mondays_only).allowed


def test_ordinary_saturday_is_not_a_working_day_cn() -> None:
    decision = run(case(due=DUE), None, at(2026, 3, 7, 10, 0), CN_WORKDAYS)
    assert not decision.allowed
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 9, 9, 0)


def test_public_holiday_skipped() -> None:
    # 2026-10-01 National Day (a Thursday): no contact; the break ends on Thursday 10-08.
    decision = run(case(due=DUE), None, at(2026, 10, 1, 10, 0), CN_WORKDAYS)
    assert not decision.allowed
    refusal = decision.refusal_for("m1", VOICE) or pytest.fail()
    assert refusal.rules == ("window.holiday",)
    assert "2026-10-01 is a public holiday" in refusal.reasons[0].message
    assert {r.next_allowed for r in decision.refused} == {at(2026, 10, 8, 9, 0)}


def test_spring_festival_break_skipped_until_the_next_working_day() -> None:
    decision = run(case(due=DUE), None, at(2026, 2, 16, 10, 0), CN_WORKDAYS)
    assert not decision.allowed
    assert {r.next_allowed for r in decision.refused} == {at(2026, 2, 24, 9, 0)}


def test_adjusted_working_saturday_after_national_day_cn() -> None:
    assert is_allowed(run(case(due=DUE), None, at(2026, 10, 10, 9, 30), CN_WORKDAYS), "m1", SMS)


def test_holidays_ignored_when_the_tier_does_not_skip_them() -> None:
    worked = strategy(tier(windows=WORKDAYS, skip_holidays=False), holiday_country="CN")
    # National Day is a Thursday: the Thursday window applies.
    assert is_allowed(run(case(due=DUE), None, at(2026, 10, 1, 10, 0), worked), "m1", VOICE)
    # Without the holiday calendar, the adjusted Saturday is just a Saturday.
    assert not run(case(due=DUE), None, at(2026, 2, 14, 10, 0), worked).allowed


def test_no_holiday_calendar_means_plain_weekdays() -> None:
    plain = strategy(tier(windows=WORKDAYS))
    assert is_allowed(run(case(due=DUE), None, at(2026, 10, 1, 10, 0), plain), "m1", VOICE)
    assert not run(case(due=DUE), None, at(2026, 2, 14, 10, 0), plain).allowed


def test_us_holiday_calendar_skips_thanksgiving() -> None:
    us = strategy(
        tier(windows=WORKDAYS),
        profile="us-consumer",
        timezone="America/New_York",
        holiday_country="US",
    )
    ny = "America/New_York"
    the_case = case(debtor(phone(number=US_NY_MOBILE)), due=DUE)
    assert not run(the_case, None, at(2026, 11, 26, 10, 0, ny), us).allowed
    assert run(the_case, None, at(2026, 11, 27, 10, 0, ny), us).allowed


def test_consumer_preset_weekend_window_on_an_ordinary_sunday() -> None:
    preset = load_preset("consumer-loan")
    the_case = case(due=date(2026, 3, 5))  # early tier on 2026-03-08
    assert is_allowed(run(the_case, None, at(2026, 3, 8, 10, 30), preset), "m1", VOICE)
    assert not run(the_case, None, at(2026, 3, 8, 9, 30), preset).allowed


def test_public_holiday_on_a_weekend_skipped() -> None:
    preset = load_preset("consumer-loan")  # has Saturday windows 10:00-12:00
    the_case = case(due=date(2026, 9, 30))  # early tier on 2026-10-03
    decision = run(the_case, None, at(2026, 10, 3, 10, 30), preset)
    assert not decision.allowed


# --- the State Council's notice: every day of a break, weekend days included ---------------
# Each year's breaks and make-up working days as the notice states them ("<first>至<last>
# 放假调休，共<n>天"; "<day>上班"), typed from the notice, not from the shipped table.
NOTICE_TEXT = {
    2025: (
        "国办发明电〔2024〕12号",
        [((1, 1), (1, 1), 1), ((1, 28), (2, 4), 8), ((4, 4), (4, 6), 3), ((5, 1), (5, 5), 5),
         ((5, 31), (6, 2), 3), ((10, 1), (10, 8), 8)],
        [(1, 26), (2, 8), (4, 27), (9, 28), (10, 11)],
    ),
    2026: (
        "国办发明电〔2025〕7号",
        [((1, 1), (1, 3), 3), ((2, 15), (2, 23), 9), ((4, 4), (4, 6), 3), ((5, 1), (5, 5), 5),
         ((6, 19), (6, 21), 3), ((9, 25), (9, 27), 3), ((10, 1), (10, 7), 7)],
        [(1, 4), (2, 14), (2, 28), (5, 9), (9, 20), (10, 10)],
    ),
}  # fmt: skip


@pytest.mark.parametrize("year", sorted(NOTICE_TEXT))
def test_every_day_of_each_break_is_a_holiday_and_make_up_days_are_worked(year: int) -> None:
    number, breaks, workdays = NOTICE_TEXT[year]
    notice = notice_for("CN", year)
    assert notice is not None and notice.number == number
    off: set[date] = set()
    for (m1, d1), (m2, d2), days in breaks:
        first, last = date(year, m1, d1), date(year, m2, d2)
        assert (last - first).days + 1 == days  # the notice's own "共N天"
        for i in range(days):
            day = first + timedelta(days=i)
            off.add(day)
            assert day_kind("CN", None, day.toordinal()) == "holiday", day
    for m, d in workdays:
        day = date(year, m, d)
        assert day.weekday() >= 5  # a weekend day made a working day
        assert day_kind("CN", None, day.toordinal()) == "workday_adjusted", day
    # Every other day is what its weekday makes it.
    day = date(year, 1, 1)
    while day.year == year:
        if day not in off and (day.month, day.day) not in workdays:
            expected = "weekend" if day.weekday() >= 5 else "workday"
            assert day_kind("CN", None, day.toordinal()) == expected, day
        day += timedelta(days=1)


@pytest.mark.parametrize("year", sorted(NOTICE_TEXT))
def test_the_holidays_librarys_statutory_days_all_fall_inside_a_break(year: int) -> None:
    # A cross-check with the independent list: no statutory day or in-lieu day the
    # library knows is outside the shipped breaks, and its make-up days are ours.
    library = holidays.country_holidays("CN", years=year)
    for day in library:
        assert day_kind("CN", None, day.toordinal()) == "holiday", (day, library[day])


def test_national_day_sunday_2026_10_04_is_inside_the_break() -> None:
    # 10月1日（周四）至7日（周三）放假调休，共7天: the Sunday is part of the break.
    preset = load_preset("consumer-loan")  # calls on ordinary Sundays (see above)
    the_case = case(due=date(2026, 9, 30))
    decision = run(the_case, None, at(2026, 10, 4, 10, 30), preset)
    assert not decision.allowed
    refusal = decision.refusal_for("m1", VOICE) or pytest.fail()
    assert refusal.rules == ("window.holiday",)
    assert refusal.next_allowed is not None and refusal.next_allowed.date() == date(2026, 10, 8)


def test_spring_festival_weekend_days_are_inside_the_break() -> None:
    # 2月15日（周日）至23日（周一）放假调休，共9天: Sunday 15, Saturday 21, Sunday 22.
    preset = load_preset("consumer-loan")
    the_case = case(due=date(2026, 2, 12))
    for day in (15, 21, 22):
        decision = run(the_case, None, at(2026, 2, day, 10, 30), preset)
        assert not decision.allowed, day
        assert refused_rules(decision, "m1", VOICE) == ("window.holiday",)


def test_a_year_with_its_notice_decides_without_a_warning() -> None:
    decision = run(case(due=DUE), None, at(2026, 3, 10, 10, 0), CN_WORKDAYS)
    assert decision.warnings == ()


def test_a_year_without_a_published_schedule_is_decided_with_a_warning() -> None:
    decision = run(case(due=date(2027, 3, 1)), None, at(2027, 3, 10, 10, 0), CN_WORKDAYS)
    assert is_allowed(decision, "m1", VOICE)  # still decided, on the library's list
    assert [w.rule for w in decision.warnings] == ["calendar.no_published_schedule"]
    assert "CN 2027" in decision.warnings[0].message


def test_no_calendar_warning_without_a_notice_country_or_holiday_skipping() -> None:
    plain = strategy(tier(windows=WORKDAYS))
    assert run(case(due=DUE), None, at(2027, 3, 10, 10, 0), plain).warnings == ()
    us = strategy(tier(windows=WORKDAYS), profile="us-consumer", holiday_country="US")
    ny = case(debtor(phone(number=US_NY_MOBILE)), due=DUE)
    assert run(ny, None, at(2027, 3, 10, 10, 0, "America/New_York"), us).warnings == ()
    worked = strategy(tier(windows=WORKDAYS, skip_holidays=False), holiday_country="CN")
    assert run(case(due=DUE), None, at(2027, 3, 10, 10, 0), worked).warnings == ()
