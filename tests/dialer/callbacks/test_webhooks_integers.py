"""A signed `SequenceNumber` or `CallDuration` that is not a count the database can hold
(past PostgreSQL's int4, past int8, negative, not a number) is a 400 naming the field,
never a 500: on SQLite and PostgreSQL, on the one-statement fast route and through the
FastAPI route (the session path) alike. Nothing is written."""

from __future__ import annotations

import pytest

from tests.dialer.support import Api
from tests.dialer.twilio_forms import Hooks, call_status, configure

STATUS = "/v1/twilio/voice/status"
SID = "CA" + "6" * 32
BAD = [
    str(2**31),
    str(2**63),
    "-1",
    "1.5",
    "1_000",
    "٣",  # an Arabic-Indic digit: int() takes it, Twilio never sends it
    "abc",
    "9" * 5000,  # past int()'s digit limit
]


@pytest.fixture(params=["fast route", "app route"])
def hooks(api: Api, request: pytest.FixtureRequest) -> Hooks:
    hooks = configure(api)
    if request.param == "fast route":
        if api.app.state.webhook_fast_path is None:
            pytest.skip("the one-statement fast route runs on PostgreSQL only")
    else:
        api.app.state.webhook_fast_path = None  # the FastAPI route and its session
    return hooks


@pytest.mark.parametrize("field", ["SequenceNumber", "CallDuration"])
@pytest.mark.parametrize("value", BAD)
async def test_a_number_the_database_cannot_hold_is_a_400_naming_the_field(
    hooks: Hooks, field: str, value: str
) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID, state="in_progress")
    fields = call_status(SID, "completed", 3, CallDuration="12")
    fields[field] = value
    r = await hooks.post(STATUS, fields, attempt=attempt.id)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_request" and field in error["message"]
    assert [f["field"] for f in error["fields"]] == [field]
    assert await hooks.events() == []
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.last_sequence_number, row.duration_seconds) == (
        "in_progress",
        None,
        None,
    )


async def test_the_largest_int4_is_kept(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID, state="in_progress")
    top = str(2**31 - 1)
    fields = call_status(SID, "completed", 3, CallDuration=top)
    fields["SequenceNumber"] = top
    r = await hooks.post(STATUS, fields, attempt=attempt.id)
    assert r.status_code == 204, r.text
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.last_sequence_number, row.duration_seconds) == (
        "completed",
        2**31 - 1,
        2**31 - 1,
    )
