"""Every callback URL we hand Twilio carries its webhook connection overrides (a URL
fragment: retry on 5xx and connect timeouts), and the callbacks Twilio then sends pass our
signature check: the fragment never reaches the server, Twilio signs the URL without it
(and, should it sign the URL with it, that is accepted too). Signatures are computed by
twilio-python's RequestValidator, not by the code under test."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urldefrag, urlsplit

import pytest

from dialer.core.settings import Settings
from dialer.services import voice_flow
from tests.dialer.support import Api
from tests.dialer.twilio_forms import BASE, Hooks, call_status, configure, gather, signature

STATUS = "/v1/twilio/voice/status"
ANSWER = "/v1/twilio/voice/answer"
GATHER = "/v1/twilio/voice/gather"
SID = "CA" + "8" * 32


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


def _overrides(hooks: Hooks) -> str:
    settings: Settings = hooks.api.app.state.settings
    return settings.twilio_connection_overrides


async def _post_as_twilio(hooks: Hooks, handed: str, fields: dict[str, str], *, signed: str) -> int:
    """POST what Twilio sends for the URL it was `handed`: the path and query only (a
    fragment is never sent), signed over `signed`."""
    parts = urlsplit(handed)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature(signed, fields),
    }
    r = await hooks.client.post(f"{parts.path}?{parts.query}", data=fields, headers=headers)
    return r.status_code


def test_the_default_overrides_retry_5xx_and_connect_timeouts() -> None:
    fragment = parse_qs(Settings().twilio_connection_overrides)
    assert {"5xx", "ct"} <= set(fragment["rp"][0].split(","))
    assert int(fragment["rc"][0]) >= 1


def test_bad_overrides_are_refused_at_start() -> None:
    with pytest.raises(ValueError, match="connection override"):
        Settings(twilio_connection_overrides="rc=3&rp=whenever")


async def test_the_gather_action_in_the_twiml_carries_the_overrides(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID, state="in_progress")
    r = await hooks.post(ANSWER, gather(SID, ""), attempt=attempt.id)
    assert r.status_code == 200
    found = re.search(r'action="([^"]+)"', r.text)
    assert found is not None, r.text
    action = unescape(found.group(1))
    assert urlsplit(action).fragment == _overrides(hooks)
    assert parse_qs(urlsplit(action).query) == {"attempt": [str(attempt.id)], "step": ["greeting"]}
    # Twilio posts the keypress to the action without the fragment, signed without it.
    fields = gather(SID, "2")
    status = await _post_as_twilio(hooks, action, fields, signed=urldefrag(action).url)
    assert status == 200
    assert (await hooks.attempt(attempt.id)).result == "third_party"


async def test_the_voicemail_redirect_url_carries_the_overrides(hooks: Hooks) -> None:
    settings: Settings = hooks.api.app.state.settings
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    url = voice_flow.voicemail_url(settings, attempt.id)
    assert url == f"{BASE}/v1/twilio/voice/voicemail?attempt={attempt.id}#{_overrides(hooks)}"


@pytest.mark.parametrize("signed_with_fragment", [False, True])
async def test_a_status_callback_for_a_url_with_overrides_passes_the_signature_check(
    hooks: Hooks, signed_with_fragment: bool
) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    handed = f"{BASE}{STATUS}?attempt={attempt.id}#{_overrides(hooks)}"
    signed = handed if signed_with_fragment else urldefrag(handed).url
    fields = call_status(SID, "ringing", 1)
    assert await _post_as_twilio(hooks, handed, fields, signed=signed) == 204
    assert (await hooks.attempt(attempt.id)).state == "ringing"


async def test_a_signature_over_another_fragment_is_refused(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    handed = f"{BASE}{STATUS}?attempt={attempt.id}#rc=1&rp=all"
    fields = call_status(SID, "ringing", 1)
    assert await _post_as_twilio(hooks, handed, fields, signed=handed) == 403
    assert await hooks.events() == []
