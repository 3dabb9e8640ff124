"""Caps that count contact occasions across channels (`count: occasions`).

The source's B2B cadence counts follow-ups, not messages: "every two days, by email and
phone" (账款催收 §一, §二: 每两日跟进一次,采用邮件加电话方式) is one follow-up every two
days, which may use both channels on the same local day. An occasion is a local day on
which the case (party, contact point: the cap's scope) was contacted on any of the cap's
channels; a contact on a day that already is an occasion adds none.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from strategy.decision import Decision, Reason
from strategy.document import Cap, Tier
from strategy.guardrails import get_profile
from strategy.model import Result
from strategy.validation import validate_strategy
from tests.strategy.builders import (
    EMAIL,
    SMS,
    VOICE,
    at,
    attempt,
    case,
    debtor,
    email,
    history,
    is_allowed,
    phone,
    run,
    strategy,
    tier,
)

DUE = date(2026, 3, 1)
CUSTOMER = case(debtor(phone("m1"), email("e1", "ap@customer.example")), due=DUE)
EVERY_TWO_DAYS = {
    "scope": "case",
    "count": "occasions",
    "limit": 1,
    "local_days": 2,
    "channels": ["email", "voice"],
}


def b2b(*caps: dict[str, Any]) -> Any:
    """A commercial tier (07:00-21:00 local, every day) by email and phone."""
    return strategy(
        tier(channels=["email", "voice", "sms"], caps=list(caps)),
        profile="commercial",
    )


def occasion_reason(decision: Decision, cp_id: str, channel: Any) -> Reason:
    refusal = decision.refusal_for(cp_id, channel)
    assert refusal is not None, f"{cp_id}/{channel} was not refused"
    (found,) = [r for r in refusal.reasons if r.rule == "cap.case.occasions"]
    return found


def test_a_call_yesterday_refuses_todays_email_until_the_second_day_ends() -> None:
    called = history(attempt(at(2026, 3, 9, 10, 0)))  # Monday, an unanswered call
    decision = run(CUSTOMER, called, at(2026, 3, 10, 10, 0), b2b(EVERY_TWO_DAYS))  # Tuesday

    for cp_id, channel in (("e1", EMAIL), ("m1", VOICE)):
        found = occasion_reason(decision, cp_id, channel)
        assert "occasions" in found.message and "1 of 1" in found.message
        # Monday leaves the two local days at Wednesday's midnight; the commercial hours
        # (07:00-21:00) open then.
        assert found.next_allowed == at(2026, 3, 11, 0, 0)
        refusal = decision.refusal_for(cp_id, channel)
        assert refusal is not None and refusal.next_allowed == at(2026, 3, 11, 7, 0)
    # SMS is not one of the cap's channels: it is not counted and not refused by it.
    assert is_allowed(decision, "m1", SMS)


def test_one_follow_up_may_use_both_channels_on_its_day() -> None:
    mailed = history(attempt(at(2026, 3, 9, 9, 0), "d", "e1", EMAIL, Result.DELIVERED))
    decision = run(CUSTOMER, mailed, at(2026, 3, 9, 15, 0), b2b(EVERY_TWO_DAYS))

    assert is_allowed(decision, "m1", VOICE)
    # ...and a second email that day too, unless a cap per channel says otherwise.
    assert is_allowed(decision, "e1", EMAIL)


def test_an_occasion_is_the_partys_local_day_not_the_utc_day() -> None:
    # 07:30 on Tuesday in Shanghai is Monday 23:30 UTC: the same local day as 15:00.
    early = history(attempt(at(2026, 3, 10, 7, 30), "d", "e1", EMAIL, Result.DELIVERED))
    decision = run(CUSTOMER, early, at(2026, 3, 10, 15, 0), b2b(EVERY_TWO_DAYS))

    assert is_allowed(decision, "m1", VOICE)


def test_two_occasions_in_a_week_counts_days_not_messages() -> None:
    twice_a_week = {**EVERY_TWO_DAYS, "limit": 2, "local_days": 7}
    # Monday: an email and two calls (one occasion); Wednesday: a call (the second).
    contacts = history(
        attempt(at(2026, 3, 9, 9, 0), "d", "e1", EMAIL, Result.DELIVERED),
        attempt(at(2026, 3, 9, 10, 0)),
        attempt(at(2026, 3, 9, 16, 0)),
        attempt(at(2026, 3, 11, 10, 0)),
    )
    wednesday = run(CUSTOMER, contacts, at(2026, 3, 11, 15, 0), b2b(twice_a_week))
    assert is_allowed(wednesday, "e1", EMAIL)

    thursday = run(CUSTOMER, contacts, at(2026, 3, 12, 10, 0), b2b(twice_a_week))
    found = occasion_reason(thursday, "e1", EMAIL)
    assert "2 of 2" in found.message
    # Monday, the older of the two occasion days, leaves the 7 local days next Monday.
    assert found.next_allowed == at(2026, 3, 16, 0, 0)


def test_occasions_limit_zero_refuses_without_a_next_instant() -> None:
    never = {**EVERY_TWO_DAYS, "limit": 0}
    decision = run(CUSTOMER, None, at(2026, 3, 10, 10, 0), b2b(never))

    assert occasion_reason(decision, "e1", EMAIL).next_allowed is None
    refusal = decision.refusal_for("e1", EMAIL)
    assert refusal is not None and refusal.next_allowed is None


def test_occasions_per_party_count_each_party_apart() -> None:
    per_party = {**EVERY_TWO_DAYS, "scope": "party"}
    called = history(attempt(at(2026, 3, 9, 10, 0)))
    decision = run(CUSTOMER, called, at(2026, 3, 10, 10, 0), b2b(per_party))

    refusal = decision.refusal_for("e1", EMAIL)
    assert refusal is not None and "cap.party.occasions" in refusal.rules


def test_an_occasions_cap_needs_local_days_and_says_which_field() -> None:
    with pytest.raises(ValidationError) as err:
        Tier.model_validate(
            {
                "id": "t",
                "dpd": {"min": 1},
                "caps": [{"scope": "case", "count": "occasions", "limit": 1, "rolling_hours": 48}],
            }
        )
    (error,) = err.value.errors()
    assert error["loc"] == ("caps", 0, "rolling_hours")
    assert "local_days" in error["msg"]


def test_occasions_never_stand_in_for_a_cap_on_calls() -> None:
    """12 CFR 1006.14(b)(2)(i) counts calls: one occasion a day can hold any number of
    them, so a tier whose only call cap counts occasions breaks us.call_frequency."""
    one_day_a_day = tier(
        caps=[{"scope": "party", "count": "occasions", "limit": 1, "local_days": 1}],
        windows={d: ["09:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        quiet_hours_after_conversation=168,
    )
    found = validate_strategy(
        strategy(one_day_a_day, profile="us-consumer"), get_profile("us-consumer")
    )
    assert [(v.path, v.clause) for v in found] == [("tiers[0].caps", "us.call_frequency")]
    # An occasion cap is counted as such in the message, not as attempts.
    assert Cap.model_validate(EVERY_TWO_DAYS).describe().startswith("1 occasions per case")
