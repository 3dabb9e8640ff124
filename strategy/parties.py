"""Who, and what they may hear: what a tier says of a party role and channel (contact
rule, channels, disclosure capped by the profile), whether the debtor counts as
unreachable (third parties, raised disclosure), and an allowed action's template."""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from strategy.candidates import BAD_VALIDITY
from strategy.caps import EPS, period
from strategy.compiled import SCOPE_CODES, CompiledTier
from strategy.context import Context
from strategy.document import ContactWhen
from strategy.guardrails import GuardrailProfile
from strategy.model import (
    CHANNELS_BY_KIND,
    Channel,
    ContactKind,
    ContactPoint,
    Disclosure,
    Party,
    PartyRole,
)
from strategy.verdicts import Cand, RuleReason, TierFacts, source

# Enum members as `Final` constants: compiled, `ContactKind.PHONE` is a module-dict and an
# enum-class attribute lookup per use (docs/performance.md measures it).
_THIRD_PARTY: Final = PartyRole.THIRD_PARTY
_ATTORNEY: Final = PartyRole.ATTORNEY
_DEBTOR: Final = PartyRole.DEBTOR
_PHONE: Final = ContactKind.PHONE

_RANK: Final = {d: d.rank for d in Disclosure}


def lowest(a: Disclosure, b: Disclosure) -> Disclosure:
    return a if _RANK[a] <= _RANK[b] else b


def _highest(a: Disclosure, b: Disclosure) -> Disclosure:
    return a if _RANK[a] >= _RANK[b] else b


def tier_facts(ctx: Context, ct: CompiledTier, cand: Cand) -> TierFacts:
    """What a tier says of a candidate, whatever the instant (kept in the tier's cache)."""
    role, channel = cand.party.role, cand.channel
    reasons, contact, disclosure, raised = _role_rule(ct, cand.party, channel)
    cap_ids = [i for i, c in enumerate(ct.caps) if channel in c.channels and role in c.roles]
    needs_unreachable = contact is ContactWhen.WHEN_DEBTOR_UNREACHABLE
    profile = ctx.profile
    guard_unreachable = role is _THIRD_PARTY and profile.third_party_only_when_debtor_unreachable
    facts = TierFacts(
        reasons=reasons,
        needs_unreachable=needs_unreachable,
        guard_unreachable=guard_unreachable,
        disclosure=disclosure,
        raised=raised,
        cap_ids=frozenset(cap_ids),
        zero_caps=tuple(i for i in cap_ids if ct.cap_limits[i] <= 0),
        spacing=tuple(
            (i, SCOPE_CODES[sp.spacing.scope])
            for i, sp in enumerate(ct.spacing)
            if channel in sp.channels
        ),
        profile_quiet=ct.profile_quiet_days > 0 and channel in ct.quiet_channels,
        reads_unreachable=needs_unreachable or guard_unreachable or raised is not None,
        reachable_reasons=_reachable_reasons(profile, role, needs_unreachable, guard_unreachable),
    )
    ctx.cache.tiers[ct.index].facts[cand.facts_key] = facts
    return facts


def _role_rule(
    ct: CompiledTier, party: Party, channel: Channel
) -> tuple[tuple[RuleReason, ...], ContactWhen, Disclosure, Disclosure | None]:
    """The tier's rule for the party's role and the channel: (its refusals, when it
    contacts the party, the disclosure and the one once the debtor is unreachable, both
    capped by the profile's ceiling for the role)."""
    role = party.role
    reasons: list[RuleReason] = []
    prule = ct.parties.get(role)
    contact = ContactWhen.ALWAYS
    disclosure = Disclosure.NONE
    raise_if_unreachable: Disclosure | None = None
    if role is _ATTORNEY:
        disclosure = Disclosure.FULL
        channel_ok = channel in ct.tier.channels
    elif prule is None:
        reasons.append(
            RuleReason("party.not_in_tier", f"tier {ct.tier.id} does not contact a {role}")
        )
        channel_ok = True
    else:
        rule = prule.rule
        contact = rule.contact
        channel_ok = channel in prule.channels
        if contact is ContactWhen.NEVER:
            reasons.append(
                RuleReason("party.tier_forbids", f"tier {ct.tier.id} never contacts a {role}")
            )
        elif contact is ContactWhen.IF_KNOWS_OF_DEBT and not party.knows_of_debt:
            reasons.append(
                RuleReason("party.unaware_of_debt", "this contact does not know of the debt")
            )
        disclosure = rule.disclosure
        if rule.disclosure_if_knows_debt is not None and party.knows_of_debt:
            disclosure = _highest(disclosure, rule.disclosure_if_knows_debt)
        raise_if_unreachable = rule.disclosure_if_debtor_unreachable
    if not channel_ok:
        reasons.append(
            RuleReason("channel.not_in_tier", f"the tier does not use {channel} for a {role}")
        )
    ceiling = prule.max_disclosure if prule is not None else Disclosure.FULL
    raised = (
        Disclosure.lowest(_highest(disclosure, raise_if_unreachable), ceiling)
        if raise_if_unreachable
        else None
    )
    return tuple(reasons), contact, Disclosure.lowest(disclosure, ceiling), raised


def _reachable_reasons(
    profile: GuardrailProfile, role: PartyRole, needs_unreachable: bool, guard_unreachable: bool
) -> tuple[RuleReason, ...]:
    out: list[RuleReason] = []
    if needs_unreachable:
        out.append(
            RuleReason(
                "party.debtor_reachable",
                f"a {role} is contacted only when the debtor cannot be reached",
                None,
                None,
            )
        )
    if guard_unreachable:
        out.append(
            RuleReason(
                "guardrail.third_party",
                "third parties only when the debtor cannot be reached",
                None,
                source(profile.third_party_clause),
            )
        )
    return tuple(out)


def debtor_unreachable(ctx: Context, ct: CompiledTier, t: float) -> bool:
    return unreachable_why(ctx, ct, t) is not None


def unreachable_why(ctx: Context, ct: CompiledTier, t: float) -> str | None:
    """Why the debtor counts as unreachable at t, or None while they can be reached.

    A recorded fact (`Case.recorded_unreachable`, e.g. a skip-trace) holds while
    since <= t < until, unless the debtor was reached since. Otherwise: no usable contact
    point, or at least the tier's number of failed attempts on debtors in its local days
    and no contact made with them there. A failed attempt is one whose outcome shows the
    debtor was not reached (no answer, busy, voicemail, failed, wrong number, someone else
    answering); a right-party conversation or a text or e-mail delivered is a contact made
    (compliance.md, "Always"), never a failed attempt; a pending attempt has no outcome."""
    debtors = ctx.debtors
    if debtors is None:
        debtors = ctx.debtors = [p for p in ctx.case.parties if p.role is _DEBTOR]
        wrong = ctx.idx.wrong_numbers
        ctx.debtor_usable = any(
            usable(cp) and cp.id not in wrong for p in debtors for cp in p.contact_points
        )
    recorded = ctx.case.recorded_unreachable
    if recorded is not None:
        since = recorded.since.timestamp()
        # A recorded fact ends early once the debtor is reached after it was recorded.
        if since <= t < recorded.until.timestamp() and not _reached(ctx, debtors, since, t):
            return (
                f"recorded unreachable since {recorded.since.isoformat()}"
                f" ({recorded.source}) until {recorded.until.isoformat()}"
            )
    if not ctx.debtor_usable:
        return "no usable contact point of the debtor"
    start = period(ctx.cache, (ctx.home_zone,), ct.unreachable_days, t)[0]
    if _reached(ctx, debtors, start, t):
        return None
    idx = ctx.idx
    end = t + EPS
    # The attempts on a debtor in [start, t] (the case scope, debtors only), less the
    # pending ones: the rest failed (a conversation with them returned above).
    ts = idx.ts
    lo = bisect_left(ts, start)
    tried = idx.roles[lo : bisect_left(ts, end, lo)].count(_DEBTOR)
    pending = idx.debtor_pending
    if pending:
        tried -= bisect_left(pending, end) - bisect_left(pending, start)
    if tried < ct.unreachable_min_attempts:
        return None
    return f"{tried} failed attempts on the debtor in {ct.unreachable_days} local day(s)"


def _reached(ctx: Context, debtors: list[Party], start: float, t: float) -> bool:
    """Whether a debtor was reached in [start, t]: a right-party conversation, or a text
    or e-mail delivered to them."""
    idx = ctx.idx
    if idx.rpc_by_party and any((idx.last_rpc(p.id, t) or -1.0) >= start for p in debtors):
        return True
    delivered = idx.debtor_delivered
    return bool(delivered) and bisect_left(delivered, start) < bisect_left(delivered, t + EPS)


def usable(cp: ContactPoint) -> bool:
    """Whether a contact point can be used on some channel at all."""
    if cp.validity in BAD_VALIDITY:
        return False
    kind = cp.kind
    opted_out = cp.opted_out
    if opted_out and all(ch in opted_out for ch in CHANNELS_BY_KIND[kind]):
        return False
    return not (cp.do_not_call and kind is _PHONE)


def template(
    profile: GuardrailProfile,
    ct: CompiledTier,
    channel: Channel,
    role: PartyRole,
    disclosure: Disclosure,
) -> tuple[str, Disclosure, bool]:
    """An allowed action's template key, voicemail disclosure and whether its text must
    carry the opt-out line: pure in the tier and (channel, role, disclosure)."""
    tier = ct.tier
    base = tier.templates.get(channel, tier.id)
    return (
        f"{base}.{channel}.{role}.{disclosure}",
        lowest(disclosure, profile.voicemail_max_disclosure),
        channel in profile.opt_out_text_required,
    )
