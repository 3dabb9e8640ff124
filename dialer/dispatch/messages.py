"""What a dispatched attempt says: rendered from the templates at the disclosure the
decision granted, failing closed (`DisclosureError`) when a template would say more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from adapters.templates import RoleGroup, TemplateRegistry, role_group, salutation
from strategy.model import Channel, Disclosure, PartyRole


@dataclass(frozen=True, slots=True)
class Sender:
    """Who the messages say is calling; from settings."""

    company_display_name: str = "Customer Service"
    agent_name: str = "Alex"
    callback_number: str = "+15005550006"
    creditor_name: str = "the creditor"
    payment_link: str = "https://pay.example.com"


@dataclass(frozen=True, slots=True)
class Rendered:
    body: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class MessageFacts:
    channel: Channel
    role: PartyRole
    name: str
    title: str | None
    language: str
    amount: Decimal
    currency: str
    due_date: date
    days_past_due: int


def language_for(country: str | None) -> str:
    return "zh" if (country or "").upper() in {"CN", "TW", "HK", "MO", "SG"} else "en"


def _names(name: str, language: str) -> tuple[str, str]:
    """(first name, family name) as far as a display name tells."""
    name = name.strip() or "there"
    if language == "zh":
        return name, name[0]
    parts = name.split()
    return parts[0], parts[-1]


def render_for(
    registry: TemplateRegistry,
    facts: MessageFacts,
    granted: Disclosure,
    voicemail: Disclosure,
    *,
    append_opt_out: bool,
    sender: Sender,
) -> Rendered:
    """The SMS or email text; for a call, the greeting and voicemail the answer webhook
    will speak are rendered here too (and discarded) so a call whose words would say more
    than granted is never placed."""
    first, family = _names(facts.name, facts.language)
    values = {
        "first_name": first,
        "salutation": salutation(facts.language, family, facts.title),
        "callback_number": sender.callback_number,
        "agent_name": sender.agent_name,
        "company_display_name": sender.company_display_name,
        "amount": f"{facts.amount:,.2f}",
        "currency": facts.currency,
        "due_date": facts.due_date.isoformat(),
        "creditor_name": sender.creditor_name,
        "days_past_due": str(facts.days_past_due),
        "payment_link": sender.payment_link,
    }
    group = role_group(facts.role)
    lang = facts.language
    if facts.channel is Channel.SMS:
        body = registry.render_sms(group, granted, lang, values, append_opt_out=append_opt_out)
        return Rendered(body)
    if facts.channel is Channel.EMAIL:
        mail = registry.render(Channel.EMAIL, group, "reminder", granted, lang, values)
        return Rendered(mail.body, mail.subject)
    purpose = "message" if group is RoleGroup.THIRD_PARTY else "greeting"
    spoken = registry.render(Channel.VOICE, group, purpose, granted, lang, values)
    registry.render(Channel.VOICE, group, "voicemail", voicemail, lang, values)
    return Rendered(spoken.body)
