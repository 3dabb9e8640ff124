"""TwiML for a collection call that honours disclosure (architecture invariant 4).

One document per step, the webhooks pick the step: `greeting` (at most who is calling; 1:
the person we seek, 2: not), `debtor_menu` (what the decision granted, and the keypad),
`third_party` (only what was granted to whoever is on the line) and `voicemail` (limited
content, 12 CFR 1006.2(j)). Every text comes from `adapters.templates`; a template above
the granted level never renders, and the builder raises rather than say more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped]

from adapters.errors import TemplateError
from adapters.templates import RoleGroup, TemplateRegistry, default_registry
from strategy.model import Channel, Disclosure

# <Say language>; pick a voice that speaks it (VoiceScript.voice), e.g. a Polly or
# Google voice for Mandarin: the default voice may not.
SAY_LANGUAGE = {"en": "en-US", "zh": "zh-CN"}
KEYS = {"1": "promise", "2": "callback", "3": "connect", "9": "stop"}  # debtor menu


@dataclass(frozen=True, slots=True)
class VoiceScript:
    """What one call may say: the granted levels, the field values, the language."""

    granted: Disclosure  # AllowedAction.disclosure for the party called
    voicemail_granted: Disclosure  # AllowedAction.voicemail_disclosure
    values: Mapping[str, str]
    language: str = "en"
    group: RoleGroup = RoleGroup.DEBTOR  # of the party the call was placed to
    third_party_granted: Disclosure = Disclosure.NONE  # for someone else on the line
    team_number: str | None = None  # E.164 of the assigned team, for keypad 3
    voice: str | None = None  # <Say voice>, e.g. "Polly.Joanna"; None: Twilio's default
    registry: TemplateRegistry = field(default_factory=default_registry)

    def text(self, group: RoleGroup, purpose: str, granted: Disclosure) -> str:
        rendered = self.registry.render(
            Channel.VOICE, group, purpose, granted, self.language, self.values
        )
        return rendered.body


def _say(node: VoiceResponse, script: VoiceScript, text: str) -> None:
    node.say(text, language=SAY_LANGUAGE.get(script.language, script.language), voice=script.voice)


def greeting(script: VoiceScript, action_url: str, *, timeout_seconds: int = 8) -> str:
    """The first words on a call. A call placed to a third party goes straight to the
    third-party message; anyone else is asked to confirm who they are."""
    if script.group is not RoleGroup.DEBTOR:
        return third_party(script, granted=script.granted)
    # Whoever answers is not yet known: at most identity, whatever the debtor was granted.
    level = Disclosure.lowest(script.granted, Disclosure.IDENTITY)
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1, action=action_url, method="POST", timeout=timeout_seconds
    )
    _say(gather, script, script.text(RoleGroup.DEBTOR, "greeting", level))
    _say(response, script, script.text(RoleGroup.DEBTOR, "no_input", Disclosure.NONE))
    response.hangup()
    return str(response)


def debtor_menu(script: VoiceScript, action_url: str, *, timeout_seconds: int = 10) -> str:
    """After the person confirmed (keypad 1) they are the debtor: what was granted."""
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1, action=action_url, method="POST", timeout=timeout_seconds
    )
    _say(gather, script, script.text(RoleGroup.DEBTOR, "confirmed", script.granted))
    _say(response, script, script.text(RoleGroup.DEBTOR, "no_input", Disclosure.NONE))
    response.hangup()
    return str(response)


def third_party(script: VoiceScript, *, granted: Disclosure | None = None) -> str:
    """For a person who is not the debtor: only what was granted to them (`none` unless
    the call was placed to a third party with a decision of its own)."""
    level = script.third_party_granted if granted is None else granted
    response = VoiceResponse()
    _say(response, script, script.text(RoleGroup.THIRD_PARTY, "message", level))
    response.hangup()
    return str(response)


def voicemail(script: VoiceScript) -> str:
    """An answering machine: the limited-content message, never more than the decision's
    voicemail level nor the level granted for the party."""
    level = Disclosure.lowest(script.voicemail_granted, script.granted)
    response = VoiceResponse()
    _say(response, script, script.text(script.group, "voicemail", level))
    response.hangup()
    return str(response)


def connect_to_team(script: VoiceScript, *, caller_id: str | None = None) -> str:
    """Keypad 3: put the confirmed debtor through to the assigned team."""
    if not script.team_number:
        raise TemplateError("no team number to connect the call to")
    response = VoiceResponse()
    _say(response, script, script.text(RoleGroup.DEBTOR, "connecting", Disclosure.NONE))
    response.dial(script.team_number, caller_id=caller_id)
    return str(response)


def closing(script: VoiceScript, purpose: str) -> str:
    """A fixed last sentence, then hang up: `promise_recorded`, `callback_requested`,
    `opted_out`, `no_input`."""
    response = VoiceResponse()
    _say(response, script, script.text(RoleGroup.DEBTOR, purpose, Disclosure.NONE))
    response.hangup()
    return str(response)


def bridge(script: VoiceScript, kind: str, address: str, *, caller_id: str | None = None) -> str:
    """The verified debtor put through to their collector: `<Dial>` to the agent's
    endpoint, `kind` one of `client` (a Voice SDK identity), `phone` (E.164) or `sip`."""
    response = VoiceResponse()
    _say(response, script, script.text(RoleGroup.DEBTOR, "connecting", Disclosure.NONE))
    dial = response.dial(caller_id=caller_id)
    if kind == "client":
        dial.client(address)
    elif kind == "phone":
        dial.number(address)
    elif kind == "sip":
        dial.sip(address)
    else:
        raise TemplateError(f"no way to reach an agent endpoint of kind {kind!r}")
    return str(response)


def hold(pause_seconds: int, redirect_url: str) -> str:
    """A verified person waiting (briefly) for a collector to come free: a pause, then
    the call asks `redirect_url` (POST) what to do next, bridge or abandoned message."""
    response = VoiceResponse()
    response.pause(length=pause_seconds)
    response.redirect(redirect_url, method="POST")
    return str(response)


def abandoned(script: VoiceScript) -> str:
    """No collector free for a person who answered: who called and a number to call
    back (never more than identity, whatever was granted), then hang up."""
    level = Disclosure.lowest(script.granted, Disclosure.IDENTITY)
    response = VoiceResponse()
    _say(response, script, script.text(RoleGroup.DEBTOR, "abandoned", level))
    response.hangup()
    return str(response)
