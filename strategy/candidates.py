"""A decision's candidates (party x contact point x channel), built once per decision
with their zones and the reasons that depend on neither the tier nor the instant: the
party (attorney, refusals), the contact point (invalid, wrong number) and the channel
(do-not-call, opt-out, consent, SMS to a landline, a third party already contacted).
"""

from __future__ import annotations

from typing import Final

from strategy.calendar import phone_facts
from strategy.context import Context
from strategy.decision import Candidate
from strategy.model import (
    CHANNELS_BY_KIND,
    Channel,
    ContactKind,
    ContactPoint,
    Party,
    PartyRole,
    Validity,
)
from strategy.verdicts import Cand, RuleReason, source

# Enum members as `Final` constants: compiled, `ContactKind.PHONE` is a module-dict and an
# enum-class attribute lookup per use (docs/performance.md measures it).
_PHONE: Final = ContactKind.PHONE
_THIRD_PARTY: Final = PartyRole.THIRD_PARTY
_ATTORNEY: Final = PartyRole.ATTORNEY
_SMS: Final = Channel.SMS
_EMAIL: Final = Channel.EMAIL

BAD_VALIDITY: Final = frozenset({Validity.WRONG_NUMBER, Validity.INVALID})
_NO_PHONE_FACTS: Final[tuple[tuple[str, ...], bool | None]] = ((), None)
# Builds a named tuple from its fields in one C call, without the generated `__new__`'s
# Python frame (docs/performance.md).
_new: Final = tuple.__new__

# (party role, knows of the debt, contact kind) -> per channel of the kind, the key of the
# tier's facts for such a candidate: built once, so every decision shares the key objects.
_CHANNEL_KEYS: Final = {
    (role, knows, kind): tuple((ch, (role, knows, ch)) for ch in CHANNELS_BY_KIND[kind])
    for role in PartyRole
    for knows in (False, True)
    for kind in ContactKind
}


def build_candidates(ctx: Context) -> list[Cand]:
    """Every candidate of the case, in party, contact point and channel order; fills the
    context's zones per contact point and where they came from."""
    out: list[Cand] = []
    zone_keys: dict[tuple[str, ...], int] = {}
    for party in ctx.case.parties:
        _party_candidates(ctx, party, zone_keys, out)
    return out


def _party_candidates(
    ctx: Context, party: Party, zone_keys: dict[tuple[str, ...], int], out: list[Cand]
) -> None:
    idx, profile = ctx.idx, ctx.profile
    consent_required = profile.consent_required
    # The once-per-third-party rule, where the profile has it (15 USC 1692b(3)).
    once_open = profile.third_party_once
    party_static = _party_reasons(ctx, party)
    points = party.contact_points
    # Each attribute of a party or contact point is read once (compiled, every read of a
    # model object is a generic attribute lookup).
    role, knows, party_id = party.role, party.knows_of_debt, party.id
    # The number's candidate zones and whether it takes SMS, once per phone.
    kinds: list[ContactKind] = []
    facts: list[tuple[tuple[str, ...], bool | None]] = []
    for cp in points:
        kind = cp.kind
        kinds.append(kind)
        if kind is not _PHONE:
            facts.append(_NO_PHONE_FACTS)
        else:
            stored = cp.zones
            facts.append(phone_facts(cp.value) if stored is None else (stored, cp.mobile))
    phone_zones: list[tuple[str, ...]] = []  # the party's phones' zones, on first need
    for i in range(len(points)):
        cp, kind = points[i], kinds[i]
        cp_id = cp.id
        zones = _zones(ctx, party, cp, kind, facts[i][0], points, kinds, facts, phone_zones)
        mobile = cp.mobile
        if kind is _PHONE and mobile is None:
            mobile = facts[i][1]
        zone_key = zone_keys.get(zones)
        if zone_key is None:
            zone_key = zone_keys[zones] = len(zone_keys)
        point_static = (
            party_static + _point_reasons(ctx, cp)
            if cp.validity in BAD_VALIDITY or cp_id in idx.wrong_numbers
            else party_static
        )
        # Most points have no do-not-call, opt-out, consent or landline reason.
        plain = (
            not cp.do_not_call and not cp.opted_out and not consent_required and mobile is not False
        )
        groups = (cp_id, party_id, None)
        once = once_open and role is _THIRD_PARTY and party_id in idx.third_party_contacted
        for channel, key in _CHANNEL_KEYS[role, knows, kind]:
            static = (
                point_static if plain else point_static + _channel_reasons(ctx, cp, channel, mobile)
            )
            if once:
                static = static + _third_party_once(ctx, party_id, cp_id, channel)
            public: Candidate = _new(Candidate, (party_id, role, cp_id, channel))
            out.append(Cand(party, cp, channel, zones, static, zone_key, key, groups, public))


def _zones(
    ctx: Context,
    party: Party,
    cp: ContactPoint,
    kind: ContactKind,
    derived: tuple[str, ...],
    points: tuple[ContactPoint, ...],
    kinds: list[ContactKind],
    facts: list[tuple[tuple[str, ...], bool | None]],
    phone_zones: list[tuple[str, ...]],
) -> tuple[str, ...]:
    """A contact point's candidate zones, recording them and their source in `ctx`: its
    own, its party's, its number's, its party's phones', else the portfolio's."""
    zones: tuple[str, ...]
    cp_zone, party_zone = cp.timezone, party.timezone
    if cp_zone:
        zones, where = (cp_zone,), "contact point"
    elif party_zone:
        zones, where = (party_zone,), "party"
    elif kind is _PHONE and derived:
        zones, where = derived, "derived from the number"
    else:
        if not phone_zones:
            phone_zones.append(_phone_zones(points, kinds, facts))
        if phone_zones[0]:
            zones, where = phone_zones[0], "derived from the party's phones"
        else:
            zones, where = (ctx.home_zone,), "portfolio default"
    ctx.point_zones[cp.id] = list(zones)
    ctx.zone_sources[cp.id] = where
    return zones


def _phone_zones(
    points: tuple[ContactPoint, ...],
    kinds: list[ContactKind],
    facts: list[tuple[tuple[str, ...], bool | None]],
) -> tuple[str, ...]:
    """Every zone a party's phones may be in (a phone's own zone if known, else the
    number's candidates): the zones of a contact point that says nothing itself."""
    seen: dict[str, None] = {}
    for i in range(len(points)):
        if kinds[i] is _PHONE:
            zone_name = points[i].timezone
            for z in (zone_name,) if zone_name else facts[i][0]:
                seen[z] = None
    return tuple(seen)


def _party_reasons(ctx: Context, party: Party) -> tuple[RuleReason, ...]:
    """Reasons that depend on the party only."""
    role = party.role
    idx = ctx.idx
    represented = ctx.represented
    if (
        not represented
        and role is not _ATTORNEY
        and not party.refused_contact
        and (role is not _THIRD_PARTY or party.id not in idx.refused_parties)
    ):
        return ()
    out: list[RuleReason] = []
    profile = ctx.profile
    if represented and role is not _ATTORNEY:
        out.append(
            RuleReason(
                "attorney.represented",
                "the debtor is represented by an attorney: contact the attorney only",
                None,
                source(profile.attorney_clause),
            )
        )
    if role is _ATTORNEY and not represented:
        out.append(RuleReason("party.attorney_not_of_record", "no attorney is on record"))
    if party.refused_contact:
        out.append(RuleReason("party.refused", "this person refused further contact"))
    elif role is _THIRD_PARTY and party.id in idx.refused_parties and profile.refusal_is_final:
        out.append(
            RuleReason(
                "party.refused",
                "this person refused further contact on an earlier call",
                None,
                source(profile.refusal_clause),
            )
        )
    return tuple(out)


def _third_party_once(
    ctx: Context, party_id: str, cp_id: str, channel: Channel
) -> tuple[RuleReason, ...]:
    """15 USC 1692b(3): a third party is communicated with once "unless requested to do
    so by such person". A request allows the one call asked for: on the contact point and
    channel it was made on, once; the next communication uses it up."""
    asked = ctx.idx.callback_open.get(party_id)
    if asked is not None and asked == (cp_id, channel):
        return ()
    message = (
        "this third party was already contacted and did not ask to be contacted again"
        if asked is None
        else f"this third party asked to be called back on {asked[0]} by {asked[1]}, not here"
    )
    clause = source(ctx.profile.third_party_once_clause)
    return (RuleReason("guardrail.third_party_once", message, None, clause),)


def _point_reasons(ctx: Context, cp: ContactPoint) -> tuple[RuleReason, ...]:
    """Reasons that depend on the contact point only."""
    if cp.validity in BAD_VALIDITY:
        return (RuleReason("contact.invalid", f"the contact point is marked {cp.validity}"),)
    if cp.id in ctx.idx.wrong_numbers:
        return (RuleReason("contact.wrong_number", "the last call reached a wrong number"),)
    return ()


def _channel_reasons(
    ctx: Context, cp: ContactPoint, channel: Channel, mobile: bool | None
) -> tuple[RuleReason, ...]:
    """Reasons that depend on the contact point and the channel."""
    consent_required = ctx.profile.consent_required
    if (
        not cp.do_not_call
        and not cp.opted_out
        and not consent_required
        and (mobile is not False or channel is not _SMS)
    ):
        return ()
    out: list[RuleReason] = []
    if cp.do_not_call and channel is not _EMAIL:
        out.append(RuleReason("contact.do_not_call", "the number is on a do-not-call list"))
    if channel in cp.opted_out:
        out.append(RuleReason("optout.channel", f"opted out of {channel} on this contact point"))
    if channel in consent_required and channel not in cp.consent:
        out.append(
            RuleReason(
                "guardrail.consent",
                f"no prior express consent for {channel} on this number",
                None,
                source(ctx.profile.consent_clause),
            )
        )
    if channel is _SMS and mobile is False:
        out.append(RuleReason("channel.sms_landline", "the number cannot receive SMS"))
    return tuple(out)
