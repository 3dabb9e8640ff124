"""A later delivered callback corrects a `failed` the reconciler concluded by itself
(issue 19 item 3), on the session path and on PostgreSQL's one-statement path alike; a
`failed` Twilio reported stays failed, whatever comes after."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from dialer.db.models import AttemptRow
from dialer.domain.attempts import INFERRED_FAILURE, AttemptState, sources
from tests.dialer.support import Api
from tests.dialer.twilio_forms import Hooks, call_status, configure, sms_status

SMS = "/v1/twilio/sms/status"
VOICE = "/v1/twilio/voice/status"


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


async def _failed(hooks: Hooks, channel: str, sid: str, error_code: str) -> AttemptRow:
    attempt = await hooks.add_attempt(await hooks.case(), channel=channel, state="failed", sid=sid)
    async with hooks.maker() as session:
        await session.execute(
            update(AttemptRow).where(AttemptRow.id == attempt.id).values(error_code=error_code)
        )
        await session.commit()
    return attempt


async def test_a_delivered_callback_corrects_a_failure_the_reconciler_concluded(
    hooks: Hooks,
) -> None:
    sid = "SM" + "5" * 32
    attempt = await _failed(hooks, "sms", sid, INFERRED_FAILURE)
    r = await hooks.post(SMS, sms_status(sid, "delivered"), attempt=attempt.id)
    assert r.status_code == 204
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.result, row.error_code) == ("completed", "delivered", None)
    # Once corrected it is the provider's word: a late `failed` no longer moves it.
    await hooks.post(SMS, sms_status(sid, "failed", error="30008"), attempt=attempt.id)
    assert (await hooks.attempt(attempt.id)).state == "completed"


async def test_a_completed_call_corrects_a_failure_the_reconciler_concluded(
    hooks: Hooks,
) -> None:
    sid = "CA" + "5" * 32
    attempt = await _failed(hooks, "voice", sid, INFERRED_FAILURE)
    await hooks.post(VOICE, call_status(sid, "completed", 4), attempt=attempt.id)
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.provider_status) == ("completed", "completed")


@pytest.mark.parametrize("error_code", ["30008", "provider_failed", "ambiguous"])
async def test_a_failure_from_twilio_or_the_worker_stays_failed(
    hooks: Hooks, error_code: str
) -> None:
    sid = "SM" + "6" * 32
    attempt = await _failed(hooks, "sms", sid, error_code)
    await hooks.post(SMS, sms_status(sid, "delivered"), attempt=attempt.id)
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.error_code) == ("failed", error_code)


async def test_a_failure_the_reconciler_concluded_is_not_reopened_as_live(hooks: Hooks) -> None:
    """Only the provider's final word corrects it: `sent` would take an in-progress place."""
    sid = "SM" + "7" * 32
    attempt = await _failed(hooks, "sms", sid, INFERRED_FAILURE)
    await hooks.post(SMS, sms_status(sid, "sent"), attempt=attempt.id)
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.error_code) == ("failed", INFERRED_FAILURE)


def test_the_fast_path_derives_the_correction_from_the_one_transition_rule() -> None:
    assert sources(AttemptState.COMPLETED, inferred=True) == ("failed",)
    assert "failed" not in sources(AttemptState.COMPLETED)
    assert sources(AttemptState.IN_PROGRESS, inferred=True) == ()
    assert sources(AttemptState.FAILED, inferred=True) == ()
