"""Who may be contacted and what may be said: party rules per tier, the debtor's
reachability, disclosure levels capped per role by the profile, third parties once (us),
refusals, attorneys; template keys and the opt-out text."""

from __future__ import annotations

from datetime import date
from typing import Any

from strategy.model import CaseFlag, Disclosure, PartyRole, Result, Validity
from tests.strategy.builders import (
    EMAIL,
    NEW_YORK,
    SMS,
    US_CHICAGO_MOBILE,
    US_NY_MOBILE,
    VOICE,
    at,
    attempt,
    case,
    debtor,
    email,
    history,
    is_allowed,
    party,
    phone,
    refused_rules,
    run,
    strategy,
    third_party,
    tier,
)

DUE = date(2026, 3, 1)
NOW = at(2026, 3, 10, 10, 0)


def third_party_strategy(profile: str = "cn-consumer", **rule: Any) -> Any:
    third = {"contact": "when_debtor_unreachable", "disclosure": "none", **rule}
    return strategy(
        tier(
            parties={"debtor": {"contact": "always", "disclosure": "full"}, "third_party": third},
            debtor_unreachable={"min_attempts": 3, "days": 2},
        ),
        profile=profile,
        timezone="Asia/Shanghai",
    )


def unanswered_debtor_calls(n: int = 3) -> Any:
    return [attempt(at(2026, 3, 9, 9 + i, 0)) for i in range(n)]


def test_third_party_not_called_when_debtor_reachable() -> None:
    the_case = case(debtor(), third_party(), due=DUE)
    decision = run(the_case, None, NOW, third_party_strategy())
    rules = refused_rules(decision, "t-m", VOICE)
    assert "party.debtor_reachable" in rules
    assert "guardrail.third_party" in rules
    assert is_allowed(decision, "m1", VOICE)


def test_third_party_called_when_debtor_unreachable_without_disclosure() -> None:
    the_case = case(debtor(), third_party(), due=DUE)
    tries = history(*unanswered_debtor_calls())
    decision = run(the_case, tries, NOW, third_party_strategy())
    action = decision.allowed_for("t-m", VOICE)
    assert action is not None
    assert action.disclosure is Disclosure.NONE
    assert action.template_key == "t1.voice.third_party.none"


def test_debtor_reached_in_the_period_is_reachable() -> None:
    the_case = case(debtor(), third_party(), due=DUE)
    tries = [*unanswered_debtor_calls(), attempt(at(2026, 3, 9, 15), result=Result.RIGHT_PARTY)]
    decision = run(the_case, history(*tries), NOW, third_party_strategy())
    assert "party.debtor_reachable" in refused_rules(decision, "t-m", VOICE)


def test_debtor_without_usable_contact_point_is_unreachable() -> None:
    the_case = case(debtor(phone(validity=Validity.WRONG_NUMBER)), third_party(), due=DUE)
    decision = run(the_case, None, NOW, third_party_strategy())
    assert is_allowed(decision, "t-m", VOICE)
    assert "contact.invalid" in refused_rules(decision, "m1", VOICE)


def test_debtor_whose_only_number_hit_a_wrong_number_is_unreachable() -> None:
    the_case = case(debtor(), third_party(), due=DUE)
    wrong = history(attempt(at(2026, 3, 9, 10), result=Result.WRONG_NUMBER))
    decision = run(the_case, wrong, NOW, third_party_strategy())
    assert "contact.wrong_number" in refused_rules(decision, "m1", VOICE)
    assert is_allowed(decision, "t-m", VOICE)


def test_third_party_never_at_a_tier_that_forbids_it() -> None:
    never = third_party_strategy(contact="never")
    decision = run(case(debtor(), third_party(), due=DUE), None, NOW, never)
    assert "party.tier_forbids" in refused_rules(decision, "t-m", VOICE)


def test_role_absent_from_tier_not_contacted() -> None:
    the_case = case(debtor(), party("g", PartyRole.GUARANTOR, phone("g1")), due=DUE)
    decision = run(the_case, None, NOW, strategy(tier()))
    assert refused_rules(decision, "g1", VOICE) == ("party.not_in_tier",)


def test_if_knows_of_debt_contacts_only_those_who_know() -> None:
    knows = strategy(
        tier(
            parties={
                "debtor": {"contact": "always", "disclosure": "full"},
                "third_party": {"contact": "if_knows_of_debt", "disclosure": "identity"},
            }
        ),
        profile="commercial",
    )
    the_case = case(
        debtor(),
        third_party("aware", knows_of_debt=True),
        third_party("unaware"),
        due=DUE,
    )
    decision = run(the_case, None, NOW, knows)
    assert is_allowed(decision, "aware-m", VOICE)
    assert refused_rules(decision, "unaware-m", VOICE) == ("party.unaware_of_debt",)


def test_disclosure_raised_for_a_contact_who_knows_only_where_profile_allows() -> None:
    the_case = case(debtor(), third_party(knows_of_debt=True), due=DUE)
    tries = history(*unanswered_debtor_calls())
    raised = {"disclosure": "identity", "disclosure_if_knows_debt": "full"}
    commercial = run(the_case, tries, NOW, third_party_strategy("commercial", **raised))
    assert (commercial.allowed_for("t-m", VOICE) or _missing()).disclosure is Disclosure.FULL
    cn = run(the_case, tries, NOW, third_party_strategy("cn-consumer", **raised))
    assert (cn.allowed_for("t-m", VOICE) or _missing()).disclosure is Disclosure.NONE


def test_disclosure_raised_when_debtor_unreachable_only_where_profile_allows() -> None:
    the_case = case(debtor(), third_party(), due=DUE)
    raised = {
        "contact": "always",
        "disclosure": "identity",
        "disclosure_if_debtor_unreachable": "full",
    }
    commercial = third_party_strategy("commercial", **raised)
    reachable = run(the_case, None, NOW, commercial).allowed_for("t-m", VOICE)
    assert reachable is not None and reachable.disclosure is Disclosure.IDENTITY
    tries = history(*unanswered_debtor_calls())
    unreachable = run(the_case, tries, NOW, commercial).allowed_for("t-m", VOICE)
    assert unreachable is not None and unreachable.disclosure is Disclosure.FULL
    assert unreachable.voicemail_disclosure is Disclosure.IDENTITY
    cn = run(the_case, tries, NOW, third_party_strategy("cn-consumer", **raised))
    assert (cn.allowed_for("t-m", VOICE) or _missing()).disclosure is Disclosure.NONE


def test_us_caps_third_party_disclosure_at_none() -> None:
    # A document that bypassed validation tells US third parties everything.
    tp = phone("t-m", US_CHICAGO_MOBILE)
    the_case = case(debtor(phone(number=US_NY_MOBILE)), third_party("t", tp), due=DUE)
    loud = third_party_strategy("us-consumer", contact="always", disclosure="full")
    action = run(the_case, None, at(2026, 3, 10, 10, 0, NEW_YORK), loud).allowed_for("t-m", VOICE)
    assert action is not None and action.disclosure is Disclosure.NONE
    assert action.template_key.endswith(".third_party.none")


def test_guarantor_may_hear_the_debt_under_cn() -> None:
    full = strategy(
        tier(
            parties={
                "debtor": {"contact": "always", "disclosure": "full"},
                "guarantor": {"contact": "always", "disclosure": "full"},
            }
        )
    )
    the_case = case(debtor(), party("g", PartyRole.GUARANTOR, phone("g1")), due=DUE)
    action = run(the_case, None, NOW, full).allowed_for("g1", VOICE)
    assert action is not None and action.disclosure is Disclosure.FULL
    assert action.voicemail_disclosure is Disclosure.IDENTITY


def test_third_party_contacted_once_us() -> None:
    tp = phone("t-m", US_CHICAGO_MOBILE)
    the_case = case(debtor(phone(number=US_NY_MOBILE)), third_party("t", tp), due=DUE)
    always = third_party_strategy("us-consumer", contact="always")
    spoke = history(attempt(at(2026, 3, 5, 10, 0, NEW_YORK), "t", "t-m", result=Result.THIRD_PARTY))
    decision = run(the_case, spoke, at(2026, 3, 10, 10, 0, NEW_YORK), always)
    assert refused_rules(decision, "t-m", VOICE) == ("guardrail.third_party_once",)
    assert refused_rules(decision, "t-m", SMS) == ("guardrail.third_party_once",)
    assert (decision.refusal_for("t-m", VOICE) or _missing()).next_allowed is None


def test_third_party_who_asked_for_a_call_back_may_be_called_again_us() -> None:
    tp = phone("t-m", US_CHICAGO_MOBILE)
    the_case = case(debtor(phone(number=US_NY_MOBILE)), third_party("t", tp), due=DUE)
    always = third_party_strategy("us-consumer", contact="always")
    asked = history(
        attempt(at(2026, 3, 5, 10, 0, NEW_YORK), "t", "t-m", result=Result.CALLBACK_REQUESTED)
    )
    assert is_allowed(run(the_case, asked, at(2026, 3, 10, 10, 0, NEW_YORK), always), "t-m", VOICE)


def test_third_party_unanswered_call_does_not_use_up_the_one_contact_us() -> None:
    tp = phone("t-m", US_CHICAGO_MOBILE)
    the_case = case(debtor(phone(number=US_NY_MOBILE)), third_party("t", tp), due=DUE)
    always = third_party_strategy("us-consumer", contact="always")
    missed = history(attempt(at(2026, 3, 5, 10, 0, NEW_YORK), "t", "t-m"))
    assert is_allowed(run(the_case, missed, at(2026, 3, 10, 10, 0, NEW_YORK), always), "t-m", VOICE)


def test_refused_third_party_never_contacted_again() -> None:
    the_case = case(debtor(), third_party("t", phone("t-m"), email("t-e")), due=DUE)
    refused = history(attempt(at(2026, 3, 9, 10), "t", "t-m", result=Result.REFUSAL))
    for profile in ("cn-consumer", "commercial"):
        st = third_party_strategy(profile, contact="always", channels=["voice", "sms", "email"])
        decision = run(the_case, refused, at(2026, 5, 10, 10, 0), st)
        for cp_id, channel in (("t-m", VOICE), ("t-m", SMS), ("t-e", EMAIL)):
            refusal = decision.refusal_for(cp_id, channel)
            assert refusal is not None and "party.refused" in refusal.rules, profile
            assert refusal.next_allowed is None


def test_party_marked_refused_not_contacted() -> None:
    the_case = case(debtor(), third_party(refused_contact=True), due=DUE)
    st = third_party_strategy("commercial", contact="always")
    assert refused_rules(run(the_case, None, NOW, st), "t-m", VOICE) == ("party.refused",)


def test_attorney_flag_contacts_attorney_only() -> None:
    lawyer = party("a", PartyRole.ATTORNEY, phone("a1", US_CHICAGO_MOBILE))
    ny_debtor = debtor(phone(number=US_NY_MOBILE))
    represented = case(ny_debtor, lawyer, due=DUE, flags=[CaseFlag.ATTORNEY])
    us = strategy(tier(), profile="us-consumer", timezone="UTC")
    decision = run(represented, None, at(2026, 3, 10, 10, 0, NEW_YORK), us)
    assert refused_rules(decision, "m1", VOICE) == ("attorney.represented",)
    action = decision.allowed_for("a1", VOICE)
    assert action is not None and action.disclosure is Disclosure.FULL
    assert {a.candidate.party_role for a in decision.allowed} == {PartyRole.ATTORNEY}


def test_attorney_not_on_record_not_contacted() -> None:
    lawyer = party("a", PartyRole.ATTORNEY, phone("a1", US_CHICAGO_MOBILE))
    the_case = case(debtor(phone(number=US_NY_MOBILE)), lawyer, due=DUE)
    us = strategy(tier(), profile="us-consumer", timezone="UTC")
    decision = run(the_case, None, at(2026, 3, 10, 10, 0, NEW_YORK), us)
    assert refused_rules(decision, "a1", VOICE) == ("party.attorney_not_of_record",)
    assert is_allowed(decision, "m1", VOICE)


def test_template_key_names_tier_template_channel_role_and_disclosure() -> None:
    templated = strategy(tier("early", templates={"sms": "reminder_v2"}))
    decision = run(case(due=DUE), None, NOW, templated)
    assert (decision.allowed_for("m1", SMS) or _missing()).template_key == (
        "reminder_v2.sms.debtor.full"
    )
    assert (decision.allowed_for("m1", VOICE) or _missing()).template_key == (
        "early.voice.debtor.full"
    )


def test_us_sms_and_email_carry_the_opt_out_text() -> None:
    us = strategy(tier(channels=["voice", "sms", "email"]), profile="us-consumer", timezone="UTC")
    the_case = case(debtor(phone(number=US_NY_MOBILE), email()), due=DUE)
    decision = run(the_case, None, at(2026, 3, 10, 10, 0, NEW_YORK), us)
    assert (decision.allowed_for("m1", SMS) or _missing()).append_opt_out is True
    assert (decision.allowed_for("e1", EMAIL) or _missing()).append_opt_out is True
    assert (decision.allowed_for("m1", VOICE) or _missing()).append_opt_out is False
    cn = run(case(due=DUE), None, NOW, strategy(tier()))
    assert (cn.allowed_for("m1", SMS) or _missing()).append_opt_out is False


def test_allowed_by_names_strategy_version_tier_and_profile() -> None:
    action = run(case(due=DUE), None, NOW, strategy(tier("early"))).allowed_for("m1", VOICE)
    assert action is not None
    assert action.allowed_by == "strategy test v3 tier early under profile cn-consumer"


def _missing() -> Any:
    raise AssertionError("expected an allowed action")
