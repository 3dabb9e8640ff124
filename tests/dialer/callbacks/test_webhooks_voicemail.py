"""Voicemail with asynchronous AMD: when Twilio reports the end of a machine's greeting
(MachineDetection=DetectMessageEnd), the live call is redirected once, after the AMD
event is committed and without holding up the webhook's answer, to TwiML that plays the
limited-content message at the level granted for an answering machine (fail closed)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from adapters.callback_urls import DEFAULT_CONNECTION_OVERRIDES
from adapters.errors import AmbiguousError
from adapters.fakes import FakeTelephony
from adapters.ports import CallInfo
from dialer.api.routes.twilio import Background
from dialer.core.auth import Role
from dialer.db.models import AttemptRow, WebhookEventRow
from dialer.observability.metrics import Metrics
from dialer.services import voice_flow
from tests.dialer.support import Api
from tests.dialer.twilio_forms import BASE, Hooks, amd, call_status, configure

AMD = "/v1/twilio/voice/amd"
STATUS = "/v1/twilio/voice/status"
VOICEMAIL = "/v1/twilio/voice/voicemail"
SID = "CA" + "6" * 32
US = "+12125550199"


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


@pytest.fixture
def fake(hooks: Hooks) -> FakeTelephony:
    telephony = FakeTelephony()
    telephony.placed[SID] = CallInfo(SID, "in-progress", US, "+14155550100")
    hooks.api.app.state.telephony = telephony
    return telephony


async def _drain(hooks: Hooks) -> None:
    background = hooks.api.app.state.webhook_background
    assert isinstance(background, Background)
    await asyncio.wait_for(background.drain(), 10)


async def _claims(hooks: Hooks) -> list[WebhookEventRow]:
    async with hooks.maker() as session:
        stmt = select(WebhookEventRow).where(WebhookEventRow.kind == "voicemail")
        return list(await session.scalars(stmt))


async def _live_attempt(hooks: Hooks, *, state: str = "in_progress") -> AttemptRow:
    return await hooks.add_attempt(await hooks.us_case(), sid=SID, state=state)


def _redirect(attempt: AttemptRow) -> str:
    """The TwiML URL the call is redirected to, with Twilio's connection overrides."""
    return f"{BASE}{VOICEMAIL}?attempt={attempt.id}#{DEFAULT_CONNECTION_OVERRIDES}"


def _value(hooks: Hooks, name: str, **labels: str) -> float:
    metrics = hooks.api.app.state.metrics
    assert isinstance(metrics, Metrics)
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    "answered_by", ["machine_end_beep", "machine_end_silence", "machine_end_other"]
)
async def test_end_of_the_machine_greeting_redirects_the_live_call_to_the_voicemail(
    hooks: Hooks, fake: FakeTelephony, answered_by: str
) -> None:
    attempt = await _live_attempt(hooks)
    r = await hooks.post(AMD, amd(SID, answered_by, to=US), attempt=attempt.id)
    assert r.status_code == 204
    await _drain(hooks)
    assert fake.updates == {SID: [_redirect(attempt)]}
    (claim,) = await _claims(hooks)
    assert (claim.status, claim.attempt_id) == ("redirected", attempt.id)
    assert _value(hooks, "dialer_voicemail_redirects_total", outcome="redirected") == 1


async def test_duplicate_and_repeated_amd_callbacks_redirect_exactly_once(
    hooks: Hooks, fake: FakeTelephony
) -> None:
    attempt = await _live_attempt(hooks)
    beep = amd(SID, "machine_end_beep", to=US)
    for headers in (None, None, {"I-Twilio-Idempotency-Token": "retry-1"}):
        r = await hooks.post(AMD, beep, attempt=attempt.id, headers=headers)
        assert r.status_code == 204
    r = await hooks.post(AMD, amd(SID, "machine_end_silence", to=US), attempt=attempt.id)
    assert r.status_code == 204
    await _drain(hooks)
    assert fake.updates == {SID: [_redirect(attempt)]}
    assert len(await _claims(hooks)) == 1


@pytest.mark.parametrize("answered_by", ["human", "machine_start", "fax", "unknown"])
async def test_no_redirect_unless_a_machine_greeting_ended(
    hooks: Hooks, fake: FakeTelephony, answered_by: str
) -> None:
    attempt = await _live_attempt(hooks)
    r = await hooks.post(AMD, amd(SID, answered_by, to=US), attempt=attempt.id)
    assert r.status_code == 204
    await _drain(hooks)
    assert fake.updates == {}
    assert await _claims(hooks) == []


async def test_a_call_already_over_is_not_redirected(hooks: Hooks, fake: FakeTelephony) -> None:
    attempt = await _live_attempt(hooks)
    r = await hooks.post(STATUS, call_status(SID, "completed", 3, to=US), attempt=attempt.id)
    assert r.status_code == 204
    r = await hooks.post(AMD, amd(SID, "machine_end_beep", to=US), attempt=attempt.id)
    assert r.status_code == 204
    await _drain(hooks)
    assert fake.updates == {}
    assert (await hooks.attempt(attempt.id)).result == "voicemail"


async def test_a_forged_amd_callback_redirects_nothing(hooks: Hooks, fake: FakeTelephony) -> None:
    attempt = await _live_attempt(hooks)
    r = await hooks.post(
        AMD, amd(SID, "machine_end_beep", to=US), attempt=attempt.id, token="not-the-token"
    )
    assert r.status_code == 403
    await _drain(hooks)
    assert fake.updates == {}
    assert await hooks.events() == []


async def test_a_failed_redirect_is_recorded_and_never_retried(
    hooks: Hooks, fake: FakeTelephony
) -> None:
    attempt = await _live_attempt(hooks)
    fake.fail_next(SID, AmbiguousError("no response to the update"), after_acting=True)
    r = await hooks.post(AMD, amd(SID, "machine_end_beep", to=US), attempt=attempt.id)
    assert r.status_code == 204
    await _drain(hooks)
    (claim,) = await _claims(hooks)
    assert claim.status == "redirect_failed"
    assert _value(hooks, "dialer_voicemail_redirects_total", outcome="failed") == 1
    # Twilio retries the callback under a new token: the claim is taken, nothing is re-sent.
    r = await hooks.post(AMD, amd(SID, "machine_end_beep", to=US), attempt=attempt.id,
                         headers={"I-Twilio-Idempotency-Token": "retry-2"})  # fmt: skip
    assert r.status_code == 204
    await _drain(hooks)
    assert fake.updates == {SID: [_redirect(attempt)]}  # the one that may have acted


class GatedTelephony(FakeTelephony):
    """Holds every update until `gate` opens; notes what was committed when it started."""

    def __init__(self, hooks: Hooks) -> None:
        super().__init__()
        self.hooks = hooks
        self.gate = asyncio.Event()
        self.claims_seen: list[str] = []

    async def update_call(self, sid: str, twiml_url: str) -> None:
        self.claims_seen = [c.status for c in await _claims(self.hooks)]
        await self.gate.wait()
        await super().update_call(sid, twiml_url)


async def test_the_webhook_answers_before_the_redirect_which_follows_the_commit(
    hooks: Hooks,
) -> None:
    gated = GatedTelephony(hooks)
    gated.placed[SID] = CallInfo(SID, "in-progress", US, "+14155550100")
    hooks.api.app.state.telephony = gated
    attempt = await _live_attempt(hooks)
    r = await asyncio.wait_for(
        hooks.post(AMD, amd(SID, "machine_end_beep", to=US), attempt=attempt.id), 10
    )
    assert r.status_code == 204  # answered while the update is still held
    assert gated.updates == {}
    await asyncio.sleep(0)  # let the background task start
    gated.gate.set()
    await _drain(hooks)
    assert gated.claims_seen == ["redirect_pending"]  # committed before the update began
    assert gated.updates == {SID: [_redirect(attempt)]}


async def _voicemail_twiml(hooks: Hooks, attempt: AttemptRow) -> str:
    r = await hooks.post(VOICEMAIL, {"AccountSid": "AC" + "a" * 32, "CallSid": SID},
                         attempt=attempt.id)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.text


async def test_the_voicemail_twiml_says_only_the_limited_content_message(
    hooks: Hooks, fake: FakeTelephony
) -> None:
    attempt = await _live_attempt(hooks)  # disclosure full, voicemail_disclosure identity
    await hooks.post(AMD, amd(SID, "machine_end_beep", to=US), attempt=attempt.id)
    await _drain(hooks)
    body = await _voicemail_twiml(hooks, attempt)
    assert "<Say" in body and "Please call us back at +14155550100" in body
    assert "from" in body and "<Hangup" in body  # identity level: who is calling
    r = await hooks.client.get(
        f"/v1/cases/{attempt.case_id}", headers=hooks.api.auth(Role.SUPERVISOR)
    )
    assert r.status_code == 200, r.text
    assert str(r.json()["amount"]) not in body and "payment" not in body.lower()


async def test_the_voicemail_falls_back_to_none_when_no_level_was_recorded(
    hooks: Hooks, fake: FakeTelephony
) -> None:
    attempt = await _live_attempt(hooks)
    async with hooks.maker() as session:
        row = await session.get(AttemptRow, attempt.id)
        assert row is not None
        row.voicemail_disclosure = None
        await session.commit()
    await hooks.post(AMD, amd(SID, "machine_end_beep", to=US), attempt=attempt.id)
    await _drain(hooks)
    body = await _voicemail_twiml(hooks, attempt)
    assert "this message is for" in body and "from" not in body.split("<Say", 1)[1]


async def test_the_voicemail_twiml_hangs_up_when_no_machine_was_reported(
    hooks: Hooks, fake: FakeTelephony
) -> None:
    attempt = await _live_attempt(hooks)
    body = await _voicemail_twiml(hooks, attempt)
    assert body == voice_flow.HANGUP
    r = await hooks.post(VOICEMAIL, {"CallSid": SID}, attempt=uuid.uuid4())
    assert r.text == voice_flow.HANGUP
