"""Independent checks of `count: occasions` caps and the B2B preset's cadence, built from
the source document (账款催收 §二) and the law, not from the engine's output.

An occasion is a local day with a contact on any of the cap's channels. These cases probe
what the first tests did not: a DST night, a phone whose zone is uncertain, the due date
itself, and whether an occasions cap could ever let through what a profile cap refuses.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from strategy.guardrails import get_profile
from strategy.model import Result, Stage
from strategy.presets import load_preset
from tests.strategy.builders import (
    EMAIL,
    VOICE,
    at,
    attempt,
    case,
    debtor,
    email,
    history,
    is_allowed,
    phone,
    refused_rules,
    run,
    strategy,
    tier,
)

B2B = load_preset("b2b-receivables")
COMMERCIAL = get_profile("commercial")
NEW_YORK = "America/New_York"
EVERY_TWO_DAYS = {
    "scope": "case",
    "count": "occasions",
    "limit": 1,
    "local_days": 2,
    "channels": ["email", "voice"],
}


def b2b_tier(**fields: Any) -> Any:
    return strategy(tier(channels=["email", "voice"], **fields), profile="commercial")


def test_occasion_days_follow_the_wall_clock_across_the_spring_forward_night() -> None:
    # New York springs forward on Sunday 8 March 2026 (a 23-hour day). A call on Saturday
    # evening makes Saturday the occasion; Sunday is refused until Monday's local midnight,
    # 04:00 UTC (EDT), not 05:00 (what a fixed EST offset would give).
    customer = case(debtor(phone("m1", "+12125550100", tz=NEW_YORK), email("e1", tz=NEW_YORK)))
    called = history(attempt(at(2026, 3, 7, 20, 30, NEW_YORK)))
    doc = b2b_tier(caps=[EVERY_TWO_DAYS])
    sunday = run(customer, called, at(2026, 3, 8, 20, 0, NEW_YORK), doc)
    refusal = sunday.refusal_for("e1", EMAIL)
    assert refusal is not None and "cap.case.occasions" in refusal.rules
    (reason,) = [r for r in refusal.reasons if r.rule == "cap.case.occasions"]
    assert reason.next_allowed == at(2026, 3, 9, 0, 0, NEW_YORK)
    assert reason.next_allowed is not None and reason.next_allowed.utcoffset() is not None
    # The instant named is allowed (the commercial hours open at 07:00).
    monday = run(customer, called, at(2026, 3, 9, 7, 0, NEW_YORK), doc)
    assert is_allowed(monday, "e1", EMAIL)


def test_a_phone_in_either_of_two_zones_gets_no_second_occasion_in_either() -> None:
    # +1 208 is Mountain (Boise) or Pacific (Los Angeles). An email at 23:30 Mountain on
    # Monday is 22:30 Pacific Monday: Monday in both. A call at 00:30 Mountain on Tuesday
    # would be a new occasion in Mountain: refused (one occasion in two days), whatever
    # Pacific says.
    customer = case(debtor(phone("m1", "+12084441234"), email("e1", tz="America/Boise")))
    mailed = history(
        attempt(at(2026, 3, 9, 23, 30, "America/Boise"), "d", "e1", EMAIL, Result.DELIVERED)
    )
    all_day = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    doc = b2b_tier(caps=[EVERY_TWO_DAYS], windows=all_day)
    tuesday_mountain = at(2026, 3, 10, 0, 30, "America/Boise")  # Monday 23:30 Pacific
    decision = run(customer, mailed, tuesday_mountain, doc)
    assert "cap.case.occasions" in refused_rules(decision, "m1", VOICE)
    refusal = decision.refusal_for("m1", VOICE)
    # Free again only once Monday has left the two days in both zones (Wednesday 00:00
    # Pacific; Mountain's midnight alone is an hour early, Pacific still on Tuesday) and
    # the commercial hours (07:00-21:00) are open in both: Wednesday 07:00 Pacific.
    wednesday = at(2026, 3, 11, 7, 0, "America/Los_Angeles")
    assert refusal is not None and refusal.next_allowed == wednesday
    assert is_allowed(run(customer, mailed, wednesday, doc), "m1", VOICE)
    tuesday = at(2026, 3, 10, 10, 0, "America/Los_Angeles")  # Tuesday in both zones
    assert "cap.case.occasions" in refused_rules(run(customer, mailed, tuesday, doc), "m1", VOICE)


def test_an_occasions_cap_never_widens_the_profiles_call_cap() -> None:
    """12 CFR 1006.14(b)(2)(i): 7 calls in 7 days per person. A tier whose only cap counts
    occasions (today already is one) must still be stopped by the profile at the 8th."""
    us = "America/Chicago"
    customer = case(debtor(phone("m1", "+13125550100", tz=us)))
    calls = history(*(attempt(at(2026, 3, 10, 9 + i, 0, us)) for i in range(7)))
    doc = strategy(
        tier(
            caps=[{"scope": "party", "count": "occasions", "limit": 1, "local_days": 1}],
            windows={d: ["08:00-21:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        ),
        profile="us-consumer",
    )
    decision = run(customer, calls, at(2026, 3, 10, 17, 0, us), doc, get_profile("us-consumer"))
    assert not is_allowed(decision, "m1", VOICE)
    assert "cap.case.occasions" not in refused_rules(decision, "m1", VOICE)


def b2b_customer(due: date) -> Any:
    return case(
        debtor(phone("m1"), email("e1", "ap@customer.example")),
        due=due,
        stage=Stage.PAYMENT,
        stage_started_on=date(2026, 2, 1),
    )


def test_b2b_the_due_date_itself_is_not_overdue() -> None:
    """账款催收 §二: 超出合约规定日期,1周内,每两日跟进 — the overdue follow-up starts once the
    contractual date is passed. On the due date the customer may still pay on time: no
    overdue follow-up, by either channel."""
    paying = b2b_customer(date(2026, 5, 12))  # a Tuesday
    due_day = run(paying, None, at(2026, 5, 12, 10, 0), B2B, COMMERCIAL)
    assert due_day.tier != "payment_overdue_first_week"
    assert not is_allowed(due_day, "m1", VOICE)
    assert not is_allowed(due_day, "e1", EMAIL)
    day_after = run(paying, None, at(2026, 5, 13, 10, 0), B2B, COMMERCIAL)
    assert day_after.tier == "payment_overdue_first_week"
    assert is_allowed(day_after, "m1", VOICE) and is_allowed(day_after, "e1", EMAIL)
