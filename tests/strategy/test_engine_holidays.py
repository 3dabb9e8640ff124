"""Working days and holidays: public holidays are skipped, China's adjusted working
weekend days (调休) take Monday's windows, per the `holidays` library's calendar."""

from __future__ import annotations

from datetime import date

import pytest

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
