"""On PostgreSQL, `FastWebhooks` answers the two status callbacks before the FastAPI stack:
the same rules hold there (signature first, commit before the 2xx, the standard error
shape), and everything else still reaches the app. On SQLite it steps aside."""

from __future__ import annotations

import pytest

from dialer.callbacks.fastpath import FastStatusPath
from tests.dialer.support import Api
from tests.dialer.twilio_forms import Hooks, call_status, configure

STATUS = "/v1/twilio/voice/status"
SID = "CA" + "2" * 32


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


def _fast(hooks: Hooks) -> FastStatusPath | None:
    fast = hooks.api.app.state.webhook_fast_path
    assert fast is None or isinstance(fast, FastStatusPath)
    return fast


async def test_the_fast_path_is_open_on_postgresql_only(hooks: Hooks) -> None:
    on_postgres = hooks.api.settings.database_url.startswith("postgresql")
    assert (_fast(hooks) is not None) == on_postgres


async def test_a_callback_whose_statement_fails_is_never_answered_2xx(hooks: Hooks) -> None:
    fast = _fast(hooks)
    if fast is None:
        pytest.skip("the one-statement path runs on PostgreSQL")
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    await fast.pool.close()  # the database is gone for this path
    r = await hooks.post(STATUS, call_status(SID, "ringing", 1), attempt=attempt.id)
    # a 5xx in the error shape (dialer.api.unexpected), so Twilio sends the callback again
    assert r.status_code >= 500 and r.json()["error"]["request_id"], r.text
    row = await hooks.attempt(attempt.id)
    assert row.state == "sent" and await hooks.events() == []


async def test_other_methods_and_paths_still_reach_the_app(hooks: Hooks) -> None:
    r = await hooks.client.get(STATUS)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = await hooks.client.post("/v1/twilio/voice/status/extra", content=b"x=1")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_a_malformed_body_is_a_400_in_the_error_shape_and_writes_nothing(
    hooks: Hooks,
) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    fields = call_status(SID, "ringing", 1)
    fields["SequenceNumber"] = "first"
    r = await hooks.post(STATUS, fields, attempt=attempt.id)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"
    assert "SequenceNumber" in r.json()["error"]["message"]
    assert await hooks.events() == []
