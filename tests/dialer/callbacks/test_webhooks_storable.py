"""Signed fields the database cannot keep (a NUL character, which PostgreSQL stores in no
text or JSON; an identifier wider than its column) are a 400 naming the field, not a 500,
on SQLite and PostgreSQL, on the fast route and the FastAPI routes alike. Nothing is
written."""

from __future__ import annotations

import pytest

from tests.dialer.support import Api
from tests.dialer.twilio_forms import Hooks, call_status, configure, inbound, sms_status

SID = "CA" + "4" * 32
MSG = "SM" + "4" * 32


@pytest.fixture(params=["fast route", "app route"])
def hooks(api: Api, request: pytest.FixtureRequest) -> Hooks:
    hooks = configure(api)
    if request.param == "fast route":
        if api.app.state.webhook_fast_path is None:
            pytest.skip("the one-statement fast route runs on PostgreSQL only")
    else:
        api.app.state.webhook_fast_path = None
    return hooks


CASES = [
    ("/v1/twilio/voice/status", call_status("CA" + "4" * 63, "ringing", 1), "CallSid"),
    ("/v1/twilio/voice/status", call_status(SID, "ringing", 1, AnsweredBy="m" * 33), "AnsweredBy"),
    ("/v1/twilio/voice/status", call_status(SID, "ringing", 1, Caller="+1\x00"), "Caller"),
    ("/v1/twilio/sms/status", sms_status(MSG, "failed", error="3" * 41), "ErrorCode"),
    ("/v1/twilio/sms/status", {**sms_status(MSG, "sent"), "X\x00": "1"}, "X\\0"),
    ("/v1/twilio/sms/inbound", inbound(MSG, "+12125550199", "STOP\x00"), "Body"),
]


@pytest.mark.parametrize(("path", "fields", "field"), CASES)
async def test_a_field_the_database_cannot_keep_is_a_400_naming_it(
    hooks: Hooks, path: str, fields: dict[str, str], field: str
) -> None:
    r = await hooks.post(path, fields)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert [f["field"] for f in error["fields"]] == [field]
    assert await hooks.events() == []
