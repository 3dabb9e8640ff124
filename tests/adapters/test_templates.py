"""Disclosure fails closed: nothing renders that says more than the decision granted."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from adapters import twiml
from adapters.errors import DisclosureError, TemplateError
from adapters.templates import (
    DEFAULT_TEMPLATES,
    FIELD_LEVELS,
    RoleGroup,
    Template,
    TemplateRegistry,
    default_registry,
    render,
    role_group,
    salutation,
)
from strategy.model import Channel, Disclosure, PartyRole

VALUES = {
    "first_name": "Jing",
    "salutation": "Dear Ms. Chen,",
    "callback_number": "+14155550123",
    "agent_name": "Sam Lee",
    "company_display_name": "SL Services",
    "amount": "1,234.50",
    "currency": "USD",
    "due_date": "1 March 2025",
    "creditor_name": "Acme Bank",
    "days_past_due": "33",
    "payment_link": "https://pay.example/x",
}
ZH_VALUES = {**VALUES, "first_name": "陈静", "currency": "元", "creditor_name": "甲银行"}
# Words and values that must never reach anyone granted less than `full`.
DEBT_WORDS = re.compile(
    r"debt|owe|collect|payment|pay\b|overdue|past due|amount|balance|invoice|loan|"
    r"欠|债|催收|逾期|还款|款项|账款|金额|贷款",
    re.IGNORECASE,
)
FULL_VALUES = [VALUES[f] for f, level in FIELD_LEVELS.items() if level is Disclosure.FULL]
FULL_VALUES += [ZH_VALUES["creditor_name"]]
COMPANY = VALUES["company_display_name"]


def assert_says_nothing_about_a_debt(text: str) -> None:
    assert not DEBT_WORDS.search(text), text
    for value in FULL_VALUES:
        assert value not in text, (value, text)


def spoken(xml: str) -> str:
    return " ".join(el.text or "" for el in ET.fromstring(xml).iter("Say"))


registry = default_registry()


# --- the renderer --------------------------------------------------------------------------
def test_template_above_the_granted_level_does_not_render() -> None:
    full = registry.best(Channel.SMS, RoleGroup.DEBTOR, "reminder", Disclosure.FULL, "en")
    with pytest.raises(DisclosureError):
        render(full, Disclosure.IDENTITY, VALUES)


def test_debt_field_in_a_none_level_template_refuses_to_render() -> None:
    sloppy = Template(
        Channel.SMS, RoleGroup.THIRD_PARTY, "reminder", Disclosure.NONE, "en",
        "Please ask {first_name} to pay {amount} to {creditor_name}.",
        frozenset({"first_name", "amount", "creditor_name"}),
    )  # fmt: skip
    for granted in Disclosure:  # even a `full` grant cannot launder a mislabelled template
        with pytest.raises(DisclosureError):
            render(sloppy, granted, VALUES)


def test_identity_field_in_a_none_level_template_refuses_to_render() -> None:
    sloppy = Template(
        Channel.VOICE, RoleGroup.THIRD_PARTY, "message", Disclosure.NONE, "en",
        "{company_display_name} asks {first_name} to call.",
        frozenset({"company_display_name", "first_name"}),
    )  # fmt: skip
    with pytest.raises(DisclosureError):
        render(sloppy, Disclosure.NONE, VALUES)


def test_field_without_a_level_is_refused() -> None:
    odd = Template(
        Channel.SMS, RoleGroup.DEBTOR, "reminder", Disclosure.FULL, "en",
        "Hi {nickname}", frozenset({"nickname"}),
    )  # fmt: skip
    with pytest.raises(DisclosureError):
        render(odd, Disclosure.FULL, {"nickname": "J"})


def test_template_using_an_undeclared_field_is_rejected_when_defined() -> None:
    with pytest.raises(TemplateError):
        Template(
            Channel.SMS, RoleGroup.DEBTOR, "reminder", Disclosure.FULL, "en",
            "{amount} due", frozenset(),
        )  # fmt: skip


def test_attribute_access_in_a_placeholder_is_rejected() -> None:
    with pytest.raises(TemplateError):
        Template(
            Channel.SMS, RoleGroup.DEBTOR, "x", Disclosure.FULL, "en",
            "{first_name.__class__}", frozenset({"first_name.__class__"}),
        )  # fmt: skip


def test_missing_value_is_a_template_error_not_an_empty_gap() -> None:
    with pytest.raises(TemplateError):
        registry.render(
            Channel.SMS, RoleGroup.THIRD_PARTY, "reminder", Disclosure.NONE, "en",
            {"first_name": "Jing"},
        )  # fmt: skip


def test_no_template_for_attorneys_fails_closed() -> None:
    with pytest.raises(TemplateError):
        registry.render(Channel.SMS, RoleGroup.ATTORNEY, "reminder", Disclosure.FULL, "en", VALUES)


def test_debt_related_roles_share_the_debtor_templates() -> None:
    assert {role_group(r) for r in (PartyRole.DEBTOR, PartyRole.GUARANTOR)} == {RoleGroup.DEBTOR}
    assert role_group(PartyRole.THIRD_PARTY) is RoleGroup.THIRD_PARTY


# --- the shipped templates -----------------------------------------------------------------
@pytest.mark.parametrize("template", DEFAULT_TEMPLATES, ids=lambda t: "-".join(map(str, t.key)))
def test_every_shipped_template_renders_at_its_own_level_and_not_below(
    template: Template,
) -> None:
    values = ZH_VALUES if template.language == "zh" else VALUES
    rendered = render(template, template.level, values)
    if template.level is not Disclosure.FULL:
        assert_says_nothing_about_a_debt(rendered.body + (rendered.subject or ""))
    if template.level is Disclosure.NONE:
        assert COMPANY not in rendered.body and VALUES["agent_name"] not in rendered.body
    lower = [d for d in Disclosure if d.rank < template.level.rank]
    for granted in lower:
        with pytest.raises(DisclosureError):
            render(template, granted, values)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_third_party_sms_at_none_only_asks_for_a_call_back(language: str) -> None:
    values = ZH_VALUES if language == "zh" else VALUES
    text = registry.render_sms(
        RoleGroup.THIRD_PARTY, Disclosure.NONE, language, values, append_opt_out=False
    )
    assert_says_nothing_about_a_debt(text)
    assert COMPANY not in text
    assert values["first_name"] in text and values["callback_number"] in text


def test_debtor_sms_at_full_states_the_debt_and_appends_the_opt_out() -> None:
    text = registry.render_sms(RoleGroup.DEBTOR, Disclosure.FULL, "en", VALUES, append_opt_out=True)
    assert "1,234.50 USD" in text and "1 March 2025" in text
    assert text.endswith(" Reply STOP to opt out.")


def test_chinese_sms_carries_the_chinese_opt_out_only_when_asked() -> None:
    with_opt_out = registry.render_sms(
        RoleGroup.DEBTOR, Disclosure.FULL, "zh", ZH_VALUES, append_opt_out=True
    )
    without = registry.render_sms(
        RoleGroup.DEBTOR, Disclosure.FULL, "zh", ZH_VALUES, append_opt_out=False
    )
    assert with_opt_out.endswith("回复TD退订")
    assert "退订" not in without


def test_identity_grant_picks_the_identity_template_not_the_full_one() -> None:
    text = registry.render_sms(
        RoleGroup.DEBTOR, Disclosure.IDENTITY, "en", VALUES, append_opt_out=False
    )
    assert_says_nothing_about_a_debt(text)
    assert COMPANY in text


@pytest.mark.parametrize(
    ("language", "title", "family", "expected"),
    [
        ("en", "Ms.", "Chen", "Dear Ms. Chen,"),
        ("en", "mr", "Smith", "Dear Mr. Smith,"),
        ("en", None, "Chen", "Dear Chen,"),
        ("en", "Finance Director", "Chen", "Dear Finance Director Chen,"),
        ("zh", "Ms.", "陈", "尊敬的陈女士："),
        ("zh", "Mr.", "王", "尊敬的王先生："),
        ("zh", "总经理", "李", "尊敬的李总经理："),
    ],
)
def test_email_salutation_by_title(
    language: str, title: str | None, family: str, expected: str
) -> None:
    assert salutation(language, family, title) == expected


@pytest.mark.parametrize("language", ["en", "zh"])
def test_b2b_email_is_short_polite_and_invites_a_reply(language: str) -> None:
    values = {**(ZH_VALUES if language == "zh" else VALUES)}
    values["salutation"] = salutation(language, "Chen" if language == "en" else "陈", "Ms.")
    email = registry.render(
        Channel.EMAIL, RoleGroup.DEBTOR, "reminder", Disclosure.FULL, language, values
    )
    assert email.body.startswith(values["salutation"])
    assert email.subject and values["amount"] in email.subject
    assert ("reply" in email.body) if language == "en" else ("回复" in email.body)
    assert len(email.body) < 600


# --- TwiML ---------------------------------------------------------------------------------
def script(**overrides: object) -> twiml.VoiceScript:
    options: dict[str, object] = {
        "granted": Disclosure.FULL,
        "voicemail_granted": Disclosure.IDENTITY,
        "values": VALUES,
        "team_number": "+14155550177",
    }
    options.update(overrides)
    return twiml.VoiceScript(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_greeting_asks_who_answered_and_says_nothing_about_the_debt(language: str) -> None:
    values = ZH_VALUES if language == "zh" else VALUES
    xml = twiml.greeting(script(language=language, values=values), "https://d.example/g?a=1")
    root = ET.fromstring(xml)
    gather = root.find("Gather")
    assert gather is not None
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["action"] == "https://d.example/g?a=1"
    assert_says_nothing_about_a_debt(spoken(xml))
    assert values["first_name"] in spoken(xml)
    assert root.find("Hangup") is not None


def test_confirmed_debtor_hears_the_debt_and_the_keypad_choices() -> None:
    xml = twiml.debtor_menu(script(), "https://d.example/menu?a=1")
    words = spoken(xml)
    assert "1,234.50 USD" in words and "1 March 2025" in words
    for key in ("press 1", "press 2", "press 3", "press 9"):
        assert key in words


def test_confirmed_debtor_granted_identity_hears_no_amount() -> None:
    xml = twiml.debtor_menu(script(granted=Disclosure.IDENTITY), "https://d.example/menu")
    assert_says_nothing_about_a_debt(spoken(xml))


@pytest.mark.parametrize("language", ["en", "zh"])
def test_someone_else_on_the_line_hears_only_a_call_back_request(language: str) -> None:
    values = ZH_VALUES if language == "zh" else VALUES
    xml = twiml.third_party(script(language=language, values=values))
    words = spoken(xml)
    assert_says_nothing_about_a_debt(words)
    assert COMPANY not in words and VALUES["agent_name"] not in words
    assert values["first_name"] in words and values["callback_number"] in words
    assert ET.fromstring(xml).find("Gather") is None


def test_call_placed_to_a_third_party_skips_the_identity_question() -> None:
    xml = twiml.greeting(
        script(group=RoleGroup.THIRD_PARTY, granted=Disclosure.NONE), "https://d.example/g"
    )
    assert ET.fromstring(xml).find("Gather") is None
    assert_says_nothing_about_a_debt(spoken(xml))
    assert COMPANY not in spoken(xml)


def test_answering_machine_gets_limited_content_only() -> None:
    xml = twiml.voicemail(script())
    words = spoken(xml)
    assert_says_nothing_about_a_debt(words)
    assert VALUES["callback_number"] in words and VALUES["agent_name"] in words


def test_voicemail_never_exceeds_the_party_grant() -> None:
    words = spoken(twiml.voicemail(script(granted=Disclosure.NONE)))
    assert COMPANY not in words
    assert_says_nothing_about_a_debt(words)


def test_keypad_3_dials_the_assigned_team() -> None:
    root = ET.fromstring(twiml.connect_to_team(script()))
    dial = root.find("Dial")
    assert dial is not None and (dial.text or "").strip() == "+14155550177"


def test_keypad_3_without_a_team_number_fails_closed() -> None:
    with pytest.raises(TemplateError):
        twiml.connect_to_team(script(team_number=None))


def test_a_registry_without_a_low_enough_template_raises_rather_than_say_more() -> None:
    only_full = TemplateRegistry.of(
        t for t in DEFAULT_TEMPLATES if not (t.purpose == "message" and t.level.rank < 2)
    )
    with pytest.raises(TemplateError):
        twiml.third_party(script(registry=only_full))
