"""Contact windows: the tier's hours per weekday intersected with the profile's hours, in
the party's zone; when the zone is unknown, only hours inside every candidate zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from strategy.model import PartyRole
from tests.strategy.builders import (
    CHICAGO,
    EMAIL,
    LOS_ANGELES,
    NEW_YORK,
    SHANGHAI,
    SMS,
    UNPLACEABLE,
    US_CHICAGO_MOBILE,
    US_LA_MOBILE,
    US_TOLL_FREE,
    VOICE,
    at,
    case,
    debtor,
    email,
    is_allowed,
    party,
    phone,
    refused_rules,
    run,
    strategy,
    tier,
    utc,
)

DUE = date(2026, 3, 1)
CN = strategy(tier())
US = strategy(tier(), profile="us-consumer", timezone="UTC")
SD_MOBILE = "+16055550100"  # South Dakota: America/Denver or America/North_Dakota/Center
WEEKDAY_WINDOWS = strategy(
    tier(
        windows={
            "mon": ["09:00-12:00", "14:00-20:00"],
            "tue": ["09:00-12:00", "14:00-20:00"],
            "wed": ["09:00-12:00", "14:00-20:00"],
            "thu": ["09:00-12:00", "14:00-20:00"],
            "fri": ["09:00-12:00", "14:00-20:00"],
            "sat": ["10:00-12:00"],
        }
    )
)


def test_no_call_before_8_local_cn() -> None:
    decision = run(case(due=DUE), None, at(2026, 3, 10, 7, 59), CN)
    assert not decision.allowed
    assert "guardrail.window" in refused_rules(decision, "m1", VOICE)
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 10, 8, 0)
    (reason,) = [r for r in refusal.reasons if r.rule == "guardrail.window"]
    assert reason.source is not None and "GB/T 45251-2025" in reason.source
    assert is_allowed(run(case(due=DUE), None, at(2026, 3, 10, 8, 0), CN), "m1", VOICE)


def test_no_call_from_22_local_cn() -> None:
    assert is_allowed(run(case(due=DUE), None, at(2026, 3, 10, 21, 59), CN), "m1", VOICE)
    late = run(case(due=DUE), None, at(2026, 3, 10, 22, 0), CN)
    assert "guardrail.window" in refused_rules(late, "m1", VOICE)
    refusal = late.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 11, 8, 0)


def test_no_call_before_8_or_from_21_local_us() -> None:
    the_case = case(debtor(phone(number=US_CHICAGO_MOBILE)), due=DUE)
    early = run(the_case, None, at(2026, 3, 10, 7, 59, CHICAGO), US)
    assert "guardrail.window" in refused_rules(early, "m1", VOICE)
    assert is_allowed(run(the_case, None, at(2026, 3, 10, 8, 0, CHICAGO), US), "m1", VOICE)
    assert is_allowed(run(the_case, None, at(2026, 3, 10, 20, 59, CHICAGO), US), "m1", SMS)
    late = run(the_case, None, at(2026, 3, 10, 21, 0, CHICAGO), US)
    assert "guardrail.window" in refused_rules(late, "m1", SMS)


def test_window_follows_the_weekday_in_the_party_zone() -> None:
    # Monday 2026-03-09 09:30 in New York is Monday 21:30 in Shanghai (the portfolio zone).
    ny_debtor = case(debtor(phone(), tz=NEW_YORK), due=DUE)
    assert is_allowed(
        run(ny_debtor, None, at(2026, 3, 9, 9, 30, NEW_YORK), WEEKDAY_WINDOWS), "m1", VOICE
    )
    # Saturday 11:00 New York uses the Saturday window; Saturday 14:00 has none.
    assert is_allowed(
        run(ny_debtor, None, at(2026, 3, 14, 11, 0, NEW_YORK), WEEKDAY_WINDOWS), "m1", VOICE
    )
    sat_afternoon = run(ny_debtor, None, at(2026, 3, 14, 14, 0, NEW_YORK), WEEKDAY_WINDOWS)
    assert "window.local_time" in refused_rules(sat_afternoon, "m1", VOICE)
    # Sunday has no window at all: the next opening is Monday 09:00 New York.
    sunday = run(ny_debtor, None, at(2026, 3, 15, 11, 0, NEW_YORK), WEEKDAY_WINDOWS)
    refusal = sunday.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 16, 9, 0, NEW_YORK)


def test_lunch_break_between_windows_refused_until_afternoon_window() -> None:
    decision = run(case(due=DUE), None, at(2026, 3, 10, 12, 30), WEEKDAY_WINDOWS)
    assert refused_rules(decision, "m1", VOICE) == ("window.local_time",)
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 10, 14, 0)


def test_allowed_action_reports_the_window_it_is_inside() -> None:
    decision = run(case(due=DUE), None, at(2026, 3, 10, 10, 15), WEEKDAY_WINDOWS)
    action = decision.allowed_for("m1", VOICE)
    assert action is not None
    assert action.window_start == at(2026, 3, 10, 10, 15)
    assert action.window_end == at(2026, 3, 10, 12, 0)
    assert action.zones == (SHANGHAI,)


def test_profile_window_caps_wider_strategy_window() -> None:
    # A document that bypassed validation asks for 06:00-23:00 every day.
    wide = strategy(tier(windows={d: ["06:00-23:00"] for d in ("mon", "tue", "wed")}))
    seven = run(case(due=DUE), None, at(2026, 3, 10, 7, 0), wide)
    assert "guardrail.window" in refused_rules(seven, "m1", VOICE)
    refusal = seven.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 10, 8, 0)
    late = run(case(due=DUE), None, at(2026, 3, 10, 22, 30), wide)
    assert "guardrail.window" in refused_rules(late, "m1", SMS)
    ok = run(case(due=DUE), None, at(2026, 3, 10, 21, 0), wide).allowed_for("m1", VOICE)
    assert ok is not None and ok.window_end == at(2026, 3, 10, 22, 0)


def test_contact_point_zone_overrides_party_zone() -> None:
    the_case = case(debtor(phone(tz=CHICAGO), tz=SHANGHAI), due=DUE)
    decision = run(the_case, None, at(2026, 3, 10, 9, 0, CHICAGO), CN)
    assert is_allowed(decision, "m1", VOICE)
    assert decision.extra["zone_sources"]["m1"] == "contact point"


def test_zone_derived_from_number_312_is_chicago() -> None:
    the_case = case(debtor(phone(number=US_CHICAGO_MOBILE)), due=DUE)
    decision = run(the_case, None, at(2026, 3, 10, 8, 30, CHICAGO), US)
    assert decision.extra["zones"]["m1"] == [CHICAGO]
    assert decision.extra["zone_sources"]["m1"] == "derived from the number"
    assert is_allowed(decision, "m1", VOICE)


def test_stored_number_facts_are_used_as_given_not_derived_again() -> None:
    # The dialer stores a number's zones and line type at import: the engine takes them as
    # the number's facts (here a Chicago mobile stored as a Los Angeles landline).
    stored = replace(phone(number=US_CHICAGO_MOBILE), zones=(LOS_ANGELES,), mobile=False)
    decision = run(case(debtor(stored), due=DUE), None, at(2026, 3, 10, 8, 30, CHICAGO), US)
    assert decision.extra["zones"]["m1"] == [LOS_ANGELES]
    assert decision.extra["zone_sources"]["m1"] == "derived from the number"
    # 06:30 in Los Angeles is before the window; a landline takes no SMS.
    assert "guardrail.window" in refused_rules(decision, "m1", VOICE)
    assert "channel.sms_landline" in refused_rules(decision, "m1", SMS)


def test_toll_free_number_allows_only_the_sliver_common_to_all_its_zones_us() -> None:
    # +1 800 may ring anywhere from Guam (UTC+10) to St John's (UTC-2:30 in summer): the
    # hours 08:00-21:00 in all of them are 22:00-23:30 UTC, and nothing else.
    the_case = case(debtor(phone(number=US_TOLL_FREE)), due=DUE)
    afternoon = run(the_case, None, at(2026, 3, 10, 14, 0, NEW_YORK), US)
    assert len(afternoon.extra["zones"]["m1"]) > 30
    refusal = afternoon.refusal_for("m1", VOICE)
    assert refusal is not None and "guardrail.window" in refusal.rules
    assert refusal.next_allowed == utc(2026, 3, 10, 22, 0)
    inside = run(the_case, None, utc(2026, 3, 10, 22, 30), US).allowed_for("m1", VOICE)
    assert inside is not None and inside.window_end == utc(2026, 3, 10, 23, 30)
    # A toll-free number is a landline: never an SMS.
    assert "channel.sms_landline" in refused_rules(afternoon, "m1", SMS)


def test_toll_free_number_has_no_common_hours_within_office_hours_us() -> None:
    office = strategy(
        tier(windows={d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}),
        profile="us-consumer",
        timezone="UTC",
    )
    the_case = case(debtor(phone(number=US_TOLL_FREE)), due=DUE)
    decision = run(the_case, None, at(2026, 3, 10, 14, 0, NEW_YORK), office)
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None
    assert "window.no_common_hours" in refusal.rules
    assert refusal.next_allowed is None


def test_unknown_zone_allows_only_hours_inside_every_candidate_zone() -> None:
    # +1 605 may be Mountain (Denver) or Central (North Dakota) time: 08:00-21:00 in both
    # is 09:00-21:00 Central.
    the_case = case(debtor(phone(number=SD_MOBILE)), due=DUE)
    central = "America/North_Dakota/Center"
    at_8_30 = run(the_case, None, at(2026, 3, 10, 8, 30, central), US)
    assert set(at_8_30.extra["zones"]["m1"]) == {"America/Denver", central}
    assert "guardrail.window" in refused_rules(at_8_30, "m1", VOICE)
    refusal = at_8_30.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 10, 9, 0, central)
    inside = run(the_case, None, at(2026, 3, 10, 9, 0, central), US).allowed_for("m1", VOICE)
    assert inside is not None and inside.window_end == at(2026, 3, 10, 21, 0, central)
    # 20:30 Mountain is 21:30 Central: too late in one of the two zones.
    late = run(the_case, None, at(2026, 3, 10, 20, 30, "America/Denver"), US)
    assert "guardrail.window" in refused_rules(late, "m1", VOICE)


def test_email_takes_the_zone_of_the_party_phone() -> None:
    the_case = case(debtor(phone(number=US_CHICAGO_MOBILE), email()), due=DUE)
    decision = run(the_case, None, at(2026, 3, 10, 7, 30, CHICAGO), US)
    assert decision.extra["zones"]["e1"] == [CHICAGO]
    assert decision.extra["zone_sources"]["e1"] == "derived from the party's phones"
    assert "guardrail.window" in refused_rules(decision, "e1", EMAIL)


def test_unplaceable_number_falls_back_to_the_strategy_zone() -> None:
    the_case = case(debtor(phone(number=UNPLACEABLE)), due=DUE)
    decision = run(the_case, None, at(2026, 3, 10, 9, 0), CN)
    assert decision.extra["zones"]["m1"] == [SHANGHAI]
    assert decision.extra["zone_sources"]["m1"] == "portfolio default"
    assert is_allowed(decision, "m1", VOICE)


def test_each_party_uses_its_own_zone() -> None:
    the_case = case(
        debtor(phone(), tz=SHANGHAI),
        party("g", PartyRole.GUARANTOR, phone("g1", US_CHICAGO_MOBILE), tz=CHICAGO),
        due=DUE,
    )
    both = strategy(
        tier(
            parties={
                "debtor": {"contact": "always", "disclosure": "full"},
                "guarantor": {"contact": "always", "disclosure": "full"},
            }
        )
    )
    # 11:00 Shanghai is 22:00 Chicago (previous day, CDT): too late for the guarantor.
    decision = run(the_case, None, at(2026, 3, 10, 11, 0), both)
    assert is_allowed(decision, "m1", VOICE)
    assert "guardrail.window" in refused_rules(decision, "g1", VOICE)


NY_CASE = case(debtor(phone(number="+12125550100")), due=DUE)


def test_fall_back_8am_is_est_on_2026_11_01_us() -> None:
    # On 10-31 12:30 UTC is 08:30 EDT; after the change on 11-01 it is 07:30 EST.
    assert is_allowed(run(NY_CASE, None, utc(2026, 10, 31, 12, 30), US), "m1", VOICE)
    decision = run(NY_CASE, None, utc(2026, 11, 1, 12, 30), US)
    assert "guardrail.window" in refused_rules(decision, "m1", VOICE)
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == utc(2026, 11, 1, 13, 0)
    assert refusal.next_allowed == at(2026, 11, 1, 8, 0, NEW_YORK)


def test_fall_back_evening_window_ends_at_21_est_us() -> None:
    action = run(NY_CASE, None, at(2026, 11, 1, 20, 0, NEW_YORK), US).allowed_for("m1", VOICE)
    assert action is not None and action.window_end == utc(2026, 11, 2, 2, 0)


def test_spring_forward_8am_is_edt_on_2026_03_08_us() -> None:
    # On 03-07 12:30 UTC is 07:30 EST; on 03-08 it is 08:30 EDT.
    before = run(NY_CASE, None, utc(2026, 3, 7, 12, 30), US)
    refusal = before.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == utc(2026, 3, 7, 13, 0)
    assert is_allowed(run(NY_CASE, None, utc(2026, 3, 8, 12, 30), US), "m1", VOICE)
    assert not run(NY_CASE, None, utc(2026, 3, 8, 11, 30), US).allowed


def test_spring_forward_night_stays_closed_us() -> None:
    # 02:30 does not exist on 2026-03-08 in New York; 03:30 EDT is still night.
    decision = run(NY_CASE, None, utc(2026, 3, 8, 7, 30), US)
    refusal = decision.refusal_for("m1", VOICE)
    assert refusal is not None and refusal.next_allowed == at(2026, 3, 8, 8, 0, NEW_YORK)


def test_email_zone_covers_every_phone_zone_of_the_party_us() -> None:
    the_case = case(
        debtor(phone("m1", US_CHICAGO_MOBILE), phone("m2", US_LA_MOBILE), email()), due=DUE
    )
    us_email = strategy(tier(channels=["email"]), profile="us-consumer", timezone="UTC")
    decision = run(the_case, None, at(2026, 3, 10, 8, 30, CHICAGO), us_email)
    assert set(decision.extra["zones"]["e1"]) == {CHICAGO, "America/Los_Angeles"}
    assert not is_allowed(decision, "e1", EMAIL)


def test_email_zone_uses_a_known_phone_zone_of_the_party_us() -> None:
    la = "America/Los_Angeles"
    the_case = case(debtor(phone("m1", US_LA_MOBILE, tz=la), email()), due=DUE)
    us_email = strategy(tier(channels=["email"]), profile="us-consumer", timezone="UTC")
    decision = run(the_case, None, at(2026, 3, 10, 7, 0, la), us_email)
    assert decision.extra["zones"]["e1"] == [la]
    assert not is_allowed(decision, "e1", EMAIL)
