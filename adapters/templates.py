"""Message templates keyed by channel, party role group, purpose, disclosure level and
language, with a renderer that fails closed (architecture invariant 4).

Every template declares its disclosure level and every field has one (`FIELD_LEVELS`).
Rendering raises `DisclosureError` for a template above the granted level, a field above
the granted level or the template's own, and a field with no level at all. Levels are
`strategy.model.Disclosure`: `none` says only whom we seek and a number to call (15 USC
1692b; GB/T 45251-2025), `identity` adds who calls for whom (12 CFR 1006.2(j)), `full` the
debt itself.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from adapters.errors import DisclosureError, TemplateError
from strategy.model import DEBT_RELATED_ROLES, Channel, Disclosure, PartyRole

FIELD_LEVELS: dict[str, Disclosure] = {
    "first_name": Disclosure.NONE,  # the person we ask for
    "salutation": Disclosure.NONE,  # "Dear Ms. Chen," (see `salutation`)
    "callback_number": Disclosure.NONE,
    "agent_name": Disclosure.IDENTITY,
    "company_display_name": Disclosure.IDENTITY,
    "amount": Disclosure.FULL,
    "currency": Disclosure.FULL,
    "due_date": Disclosure.FULL,
    "creditor_name": Disclosure.FULL,
    "days_past_due": Disclosure.FULL,
    "payment_link": Disclosure.FULL,
}

OPT_OUT_SUFFIX = {"en": "Reply STOP to opt out.", "zh": "回复TD退订"}


class RoleGroup(StrEnum):
    DEBTOR = "debtor"  # the debtor and the debt-related: guarantor, co-borrower
    THIRD_PARTY = "third_party"
    ATTORNEY = "attorney"


def role_group(role: PartyRole) -> RoleGroup:
    if role in DEBT_RELATED_ROLES:
        return RoleGroup.DEBTOR
    if role is PartyRole.ATTORNEY:
        return RoleGroup.ATTORNEY
    return RoleGroup.THIRD_PARTY


def fields_of(text: str) -> frozenset[str]:
    """The `{field}` names a text uses; format specs and conversions are refused."""
    names = set()
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise TemplateError(f"only plain {{field}} placeholders are allowed, not {name!r}")
        names.add(name)
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class Template:
    channel: Channel
    group: RoleGroup
    purpose: str  # "reminder", "greeting", "confirmed", "message", "voicemail", ...
    level: Disclosure  # the disclosure its text requires
    language: str  # "en", "zh"
    body: str
    fields: frozenset[str]  # declared; must cover what body and subject use
    subject: str | None = None  # email only

    def __post_init__(self) -> None:
        used = fields_of(self.body) | fields_of(self.subject or "")
        undeclared = used - self.fields
        if undeclared:
            raise TemplateError(f"template uses undeclared fields {sorted(undeclared)}")

    @property
    def key(self) -> tuple[Channel, RoleGroup, str, Disclosure, str]:
        return (self.channel, self.group, self.purpose, self.level, self.language)


@dataclass(frozen=True, slots=True)
class Rendered:
    body: str
    subject: str | None = None
    level: Disclosure = Disclosure.NONE  # the level of the template that rendered it


def render(template: Template, granted: Disclosure, values: Mapping[str, str]) -> Rendered:
    """Render, or raise `DisclosureError` if anything would say more than `granted`."""
    if template.level.rank > granted.rank:
        raise DisclosureError(
            f"template {template.key} needs {template.level}, the decision granted {granted}"
        )
    used = fields_of(template.body) | fields_of(template.subject or "")
    for name in sorted(used):
        level = FIELD_LEVELS.get(name)
        if level is None:
            raise DisclosureError(f"field {name!r} has no disclosure level: refused")
        if level.rank > granted.rank or level.rank > template.level.rank:
            raise DisclosureError(
                f"field {name!r} is {level}-level; template {template.key} declares "
                f"{template.level}, the decision granted {granted}"
            )
    missing = sorted(name for name in used if not values.get(name))
    if missing:
        raise TemplateError(f"no value for {missing} in template {template.key}")
    # Values are only those the template uses: nothing else can leak through formatting.
    chosen = {name: values[name] for name in used}
    subject = template.subject.format_map(chosen) if template.subject else None
    return Rendered(template.body.format_map(chosen), subject, template.level)


@dataclass
class TemplateRegistry:
    templates: dict[tuple[Channel, RoleGroup, str, Disclosure, str], Template] = field(
        default_factory=dict
    )

    @classmethod
    def of(cls, templates: Iterable[Template]) -> TemplateRegistry:
        registry = cls()
        for template in templates:
            registry.add(template)
        return registry

    def add(self, template: Template) -> None:
        if template.key in self.templates:
            raise TemplateError(f"duplicate template {template.key}")
        self.templates[template.key] = template

    def best(
        self, channel: Channel, group: RoleGroup, purpose: str, granted: Disclosure, language: str
    ) -> Template:
        """The most informative template at or below the granted level."""
        for level in sorted(Disclosure, key=lambda d: d.rank, reverse=True):
            if level.rank > granted.rank:
                continue
            template = self.templates.get((channel, group, purpose, level, language))
            if template is not None:
                return template
        raise TemplateError(
            f"no {language} {channel} '{purpose}' template for {group} at or below {granted}"
        )

    def render(
        self,
        channel: Channel,
        group: RoleGroup,
        purpose: str,
        granted: Disclosure,
        language: str,
        values: Mapping[str, str],
    ) -> Rendered:
        return render(self.best(channel, group, purpose, granted, language), granted, values)

    def render_sms(
        self,
        group: RoleGroup,
        granted: Disclosure,
        language: str,
        values: Mapping[str, str],
        *,
        append_opt_out: bool,
        purpose: str = "reminder",
    ) -> str:
        """The SMS text, with the opt-out sentence when the decision's action asks for it
        (12 CFR 1006.6(e); CBA 2026 退订)."""
        text = self.render(Channel.SMS, group, purpose, granted, language, values).body
        if append_opt_out:
            separator = "" if language == "zh" else " "
            text = f"{text}{separator}{OPT_OUT_SUFFIX[language]}"
        return text


_EN_TITLES = {"ms": "Ms.", "mrs": "Mrs.", "miss": "Miss", "mr": "Mr.", "dr": "Dr."}
_ZH_TITLES = {"ms": "女士", "mrs": "女士", "miss": "女士", "mr": "先生", "dr": "博士"}


def salutation(language: str, family_name: str, title: str | None = None) -> str:
    """ "Dear Ms. Chen," / "尊敬的陈女士：" from a family name and a title such as "Ms."."""
    key = (title or "").strip().rstrip(".").lower()
    if language == "zh":
        honorific = _ZH_TITLES.get(key, (title or "").strip())
        return f"尊敬的{family_name}{honorific}："
    name = f"{_EN_TITLES.get(key, (title or '').strip())} {family_name}".strip()
    return f"Dear {name},"


def _t(
    channel: Channel,
    group: RoleGroup,
    purpose: str,
    level: Disclosure,
    language: str,
    body: str,
    subject: str | None = None,
) -> Template:
    fields = fields_of(body) | fields_of(subject or "")
    return Template(channel, group, purpose, level, language, body, fields, subject)


V, S, E = Channel.VOICE, Channel.SMS, Channel.EMAIL
D, TP = RoleGroup.DEBTOR, RoleGroup.THIRD_PARTY
NONE, IDENTITY, FULL = Disclosure.NONE, Disclosure.IDENTITY, Disclosure.FULL

DEFAULT_TEMPLATES: tuple[Template, ...] = (
    # --- SMS ---------------------------------------------------------------------------
    _t(S, D, "reminder", FULL, "en",
       "{company_display_name}: Hello {first_name}, your payment of {amount} {currency} "
       "was due on {due_date}. Please pay or call us at {callback_number}."),
    _t(S, D, "reminder", FULL, "zh",
       "【{company_display_name}】{first_name}您好，您有一笔{amount}{currency}的款项已于"
       "{due_date}到期，请及时处理或致电{callback_number}。"),
    _t(S, D, "reminder", IDENTITY, "en",
       "{company_display_name}: Hello {first_name}, this is {agent_name}. "
       "Please call us back at {callback_number}."),
    _t(S, D, "reminder", IDENTITY, "zh",
       "【{company_display_name}】{first_name}您好，我是{agent_name}，请回电{callback_number}。"),
    _t(S, TP, "reminder", NONE, "en",
       "Hello, could you please ask {first_name} to call {callback_number}? Thank you."),
    _t(S, TP, "reminder", NONE, "zh", "您好，麻烦转告{first_name}回电{callback_number}，谢谢。"),
    _t(S, TP, "reminder", IDENTITY, "en",
       "Hello, this is {agent_name} of {company_display_name}. Could you please ask "
       "{first_name} to call us at {callback_number}? Thank you."),
    _t(S, TP, "reminder", IDENTITY, "zh",
       "您好，我是{company_display_name}的{agent_name}，麻烦转告{first_name}回电"
       "{callback_number}，谢谢。"),
    # --- voice: whoever answers first hears at most who is calling ----------------------
    _t(V, D, "greeting", IDENTITY, "en",
       "Hello, this is {agent_name} calling from {company_display_name}. If you are "
       "{first_name}, please press 1. If you are not, please press 2."),
    _t(V, D, "greeting", IDENTITY, "zh",
       "您好，这里是{company_display_name}，我是{agent_name}。如果您是{first_name}本人，请按1；"
       "如果不是，请按2。"),
    _t(V, D, "greeting", NONE, "en",
       "Hello, we are calling for {first_name}. If you are {first_name}, please press 1. "
       "If you are not, please press 2."),
    _t(V, D, "greeting", NONE, "zh",
       "您好，我们找{first_name}。如果您是{first_name}本人，请按1；如果不是，请按2。"),
    # --- voice: the confirmed debtor -----------------------------------------------------
    _t(V, D, "confirmed", FULL, "en",
       "Thank you, {first_name}. This is {company_display_name} about your payment of "
       "{amount} {currency} to {creditor_name}, which was due on {due_date}. "
       "To promise a payment, press 1. To ask us to call you back, press 2. "
       "To speak with our team now, press 3. To stop these calls, press 9."),
    _t(V, D, "confirmed", FULL, "zh",
       "{first_name}您好，这里是{company_display_name}。您在{creditor_name}有一笔{amount}"
       "{currency}的款项已于{due_date}到期。承诺还款请按1，需要我们稍后回电请按2，"
       "转接人工服务请按3，不再接听此类电话请按9。"),
    _t(V, D, "confirmed", IDENTITY, "en",
       "Thank you, {first_name}. Please call us back at {callback_number}. "
       "To speak with our team now, press 3. To stop these calls, press 9."),
    _t(V, D, "confirmed", IDENTITY, "zh",
       "{first_name}您好，请回电{callback_number}。转接人工服务请按3，不再接听此类电话请按9。"),
    # --- voice: answering machines (12 CFR 1006.2(j) limited content) --------------------
    _t(V, D, "voicemail", IDENTITY, "en",
       "Hello, this is {agent_name} from {company_display_name}, for {first_name}. "
       "Please call us back at {callback_number}. Thank you."),
    _t(V, D, "voicemail", IDENTITY, "zh",
       "您好，我是{company_display_name}的{agent_name}，找{first_name}。请回电{callback_number}，谢谢。"),
    _t(V, D, "voicemail", NONE, "en",
       "Hello, this message is for {first_name}. Please call {callback_number}. Thank you."),
    _t(V, D, "voicemail", NONE, "zh",
       "您好，这是给{first_name}的留言，请回电{callback_number}，谢谢。"),
    # --- voice: third parties ------------------------------------------------------------
    _t(V, TP, "message", NONE, "en",
       "Hello. Could you please ask {first_name} to call {callback_number}? "
       "Thank you, goodbye."),
    _t(V, TP, "message", NONE, "zh",
       "您好，麻烦转告{first_name}回电{callback_number}，谢谢，再见。"),
    _t(V, TP, "message", IDENTITY, "en",
       "Hello, this is {agent_name} from {company_display_name}. Could you please ask "
       "{first_name} to call us at {callback_number}? Thank you, goodbye."),
    _t(V, TP, "message", IDENTITY, "zh",
       "您好，我是{company_display_name}的{agent_name}，麻烦转告{first_name}回电"
       "{callback_number}，谢谢，再见。"),
    _t(V, TP, "voicemail", NONE, "en",
       "Hello, this message is for {first_name}. Please call {callback_number}. Thank you."),
    _t(V, TP, "voicemail", NONE, "zh",
       "您好，这是给{first_name}的留言，请回电{callback_number}，谢谢。"),
    # --- voice: fixed replies, nothing about any debt -------------------------------------
    _t(V, D, "promise_recorded", NONE, "en", "Thank you. We have noted your promise. Goodbye."),
    _t(V, D, "promise_recorded", NONE, "zh", "谢谢，我们已记录您的承诺。再见。"),
    _t(V, D, "callback_requested", NONE, "en", "Thank you. We will call you back. Goodbye."),
    _t(V, D, "callback_requested", NONE, "zh", "谢谢，我们稍后会再联系您。再见。"),
    _t(V, D, "opted_out", NONE, "en",
       "Understood. You will not receive these calls at this number again. Goodbye."),
    _t(V, D, "opted_out", NONE, "zh", "好的，此号码将不再接到此类电话。再见。"),
    _t(V, D, "connecting", NONE, "en", "Connecting you now. Please hold."),
    _t(V, D, "connecting", NONE, "zh", "正在为您转接，请稍候。"),
    # a person answered an agent-mode call and no collector was free (16 CFR
    # 310.4(b)(4)(iii): the seller's name and a number to call back)
    _t(V, D, "abandoned", IDENTITY, "en",
       "Hello, this is {company_display_name}. We are sorry, no one is free to take your "
       "call right now. Please call us at {callback_number}. Goodbye."),
    _t(V, D, "abandoned", IDENTITY, "zh",
       "您好，这里是{company_display_name}。抱歉，目前没有工作人员可以接听，"
       "请致电{callback_number}。再见。"),
    _t(V, D, "abandoned", NONE, "en",
       "Hello, we are sorry, no one is free to take your call right now. "
       "Please call {callback_number}. Goodbye."),
    _t(V, D, "abandoned", NONE, "zh",
       "您好，抱歉，目前没有工作人员可以接听，请致电{callback_number}。再见。"),
    _t(V, D, "no_input", NONE, "en", "We did not receive a choice. Goodbye."),
    _t(V, D, "no_input", NONE, "zh", "未收到您的选择，再见。"),
    # --- email, B2B "email + phone" cadence: short, polite, inviting a reply ---------------
    _t(E, D, "reminder", FULL, "en",
       "{salutation}\n\n"
       "A friendly reminder that our invoice of {amount} {currency} from {creditor_name} "
       "was due on {due_date}. If payment is already on its way, thank you, and please "
       "disregard this note. Otherwise, could you reply to let us know when we can expect "
       "it, or whether anything is holding it up?\n\n"
       "Kind regards,\n{agent_name}\n{company_display_name}\n{callback_number}\n",
       subject="Payment reminder: {amount} {currency} due {due_date}"),
    _t(E, D, "reminder", FULL, "zh",
       "{salutation}\n\n"
       "您好！温馨提醒：{creditor_name}金额为{amount}{currency}的账款已于{due_date}到期。"
       "如已安排付款，谢谢，请忽略本邮件；如尚未安排，烦请回复告知预计付款时间，"
       "或是否有需要我们协助的地方。\n\n"
       "此致\n敬礼\n{agent_name}\n{company_display_name}\n{callback_number}\n",
       subject="付款提醒：{amount}{currency}，到期日{due_date}"),
    _t(E, D, "reminder", IDENTITY, "en",
       "{salutation}\n\n"
       "This is {agent_name} from {company_display_name}. Could you reply to this email or "
       "call me at {callback_number} at a convenient time?\n\n"
       "Kind regards,\n{agent_name}\n{company_display_name}\n",
       subject="Please get in touch with {company_display_name}"),
    _t(E, D, "reminder", IDENTITY, "zh",
       "{salutation}\n\n"
       "您好！我是{company_display_name}的{agent_name}，方便时请回复本邮件或致电"
       "{callback_number}与我联系。\n\n"
       "此致\n敬礼\n{agent_name}\n{company_display_name}\n",
       subject="{company_display_name}：烦请与我们联系"),
)  # fmt: skip


def default_registry() -> TemplateRegistry:
    return TemplateRegistry.of(DEFAULT_TEMPLATES)
