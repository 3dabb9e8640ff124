"""Every request the Twilio adapter makes, against respx: the exact form, and each failure."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from adapters.callback_urls import DEFAULT_CONNECTION_OVERRIDES, check_overrides
from adapters.errors import (
    AmbiguousError,
    NotFoundError,
    PermanentError,
    PermanentErrorKind,
    TransientError,
)
from adapters.ports import CallRequest, SmsRequest
from adapters.twilio import TwilioSettings, TwilioTelephony
from adapters.twilio_client import HttpxTwilioClient, retry_after_seconds

SID = "AC00000000000000000000000000000000"
TOKEN = "secret-token"
API = f"https://api.twilio.com/2010-04-01/Accounts/{SID}"
BASE = "https://dialer.example.com"
OVERRIDES = DEFAULT_CONNECTION_OVERRIDES  # the fragment of every callback URL (checked below)
CALL_JSON = {
    "sid": "CA1",
    "status": "queued",
    "to": "+14155550100",
    "from": "+14155550199",
    "date_created": "Mon, 03 Mar 2025 17:00:00 +0000",
    "start_time": None,
    "duration": None,
    "answered_by": None,
}
SMS_JSON = {"sid": "SM1", "status": "accepted", "to": "+8613800138000", "error_code": None}


def error_json(code: int, status: int, message: str = "nope") -> dict[str, object]:
    return {"code": code, "message": message, "status": status, "more_info": "x"}


class SleepRecorder:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def telephony(sleeps: SleepRecorder) -> AsyncIterator[TwilioTelephony]:
    settings = TwilioSettings(
        account_sid=SID,
        auth_token=TOKEN,
        public_base_url=BASE + "/",
        messaging_service_sid="MG1",
    )
    adapter = TwilioTelephony(settings, http_client=HttpxTwilioClient(), sleep=sleeps)
    yield adapter
    await adapter.close()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        yield router


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode(), keep_blank_values=True, strict_parsing=True)


def only_request(route: respx.Route) -> httpx.Request:
    assert route.call_count == 1
    return route.calls.last.request


CALL = CallRequest(attempt_id="att-1", to="+14155550100", from_number="+14155550199")
SMS = SmsRequest(attempt_id="att-2", to="+8613800138000", body="Hello. 回复TD退订")


# --- calls ---------------------------------------------------------------------------------
async def test_call_create_posts_twiml_url_all_status_events_and_async_amd(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.post("/Calls.json").respond(201, json=CALL_JSON)
    ref = await telephony.place_call(CALL)

    assert (ref.provider, ref.id, ref.status) == ("twilio", "CA1", "queued")
    request = only_request(route)
    assert form(request) == {
        "To": ["+14155550100"],
        "From": ["+14155550199"],
        "Url": [f"{BASE}/v1/twilio/voice/answer?attempt=att-1#{OVERRIDES}"],
        "Method": ["POST"],
        "StatusCallback": [f"{BASE}/v1/twilio/voice/status?attempt=att-1#{OVERRIDES}"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "StatusCallbackMethod": ["POST"],
        "MachineDetection": ["DetectMessageEnd"],
        "AsyncAmd": ["true"],
        "AsyncAmdStatusCallback": [f"{BASE}/v1/twilio/voice/amd?attempt=att-1#{OVERRIDES}"],
        "AsyncAmdStatusCallbackMethod": ["POST"],
    }
    expected_auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_call_ring_timeout_and_time_limit_are_sent_when_given(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.post("/Calls.json").respond(201, json=CALL_JSON)
    await telephony.place_call(
        CallRequest("att-1", "+14155550100", "+14155550199", 25, time_limit_seconds=600)
    )
    body = form(only_request(route))
    assert (body["Timeout"], body["TimeLimit"]) == (["25"], ["600"])


async def test_429_on_create_call_is_retried_then_succeeds(
    api: respx.MockRouter, telephony: TwilioTelephony, sleeps: SleepRecorder
) -> None:
    route = api.post("/Calls.json").mock(
        side_effect=[
            httpx.Response(429, json=error_json(20429, 429, "Too Many Requests")),
            httpx.Response(201, json=CALL_JSON),
        ]
    )
    ref = await telephony.place_call(CALL)
    assert ref.id == "CA1"
    assert route.call_count == 2
    assert form(route.calls[0].request) == form(route.calls[1].request)
    assert len(sleeps.waits) == 1


async def test_429_retry_after_is_honoured(
    api: respx.MockRouter, telephony: TwilioTelephony, sleeps: SleepRecorder
) -> None:
    api.post("/Calls.json").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json=error_json(20429, 429)),
            httpx.Response(201, json=CALL_JSON),
        ]
    )
    await telephony.place_call(CALL)
    assert sleeps.waits == [7.0]


async def test_429_beyond_the_attempt_bound_is_a_transient_error(
    api: respx.MockRouter, telephony: TwilioTelephony, sleeps: SleepRecorder
) -> None:
    route = api.post("/Calls.json").respond(429, json=error_json(20429, 429))
    with pytest.raises(TransientError):
        await telephony.place_call(CALL)
    assert route.call_count == telephony.settings.max_attempts
    assert all(0 < w <= telephony.settings.max_retry_wait for w in sleeps.waits)


async def test_without_retry_creates_a_429_goes_to_the_caller_with_its_retry_after(
    api: respx.MockRouter, telephony: TwilioTelephony, sleeps: SleepRecorder
) -> None:
    """The dispatch worker retries creates itself, on a pacing slot (issue 19 item 5)."""
    telephony.settings = dataclasses.replace(telephony.settings, retry_creates=False)
    calls = api.post("/Calls.json").respond(
        429, headers={"Retry-After": "3"}, json=error_json(20429, 429)
    )
    texts = api.post("/Messages.json").respond(429, json=error_json(20429, 429))
    with pytest.raises(TransientError) as raised:
        await telephony.place_call(CALL)
    assert raised.value.retry_after == 3.0
    with pytest.raises(TransientError):
        await telephony.send_sms(SMS)
    assert calls.call_count == 1 and texts.call_count == 1 and sleeps.waits == []


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_on_create_call_is_ambiguous_and_not_retried(
    api: respx.MockRouter, telephony: TwilioTelephony, sleeps: SleepRecorder, status: int
) -> None:
    route = api.post("/Calls.json").respond(status, json=error_json(20500, status))
    with pytest.raises(AmbiguousError):
        await telephony.place_call(CALL)
    assert route.call_count == 1
    assert sleeps.waits == []


async def test_5xx_without_json_body_on_create_sms_is_ambiguous_and_not_retried(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.post("/Messages.json").respond(502, text="<html>Bad Gateway</html>")
    with pytest.raises(AmbiguousError):
        await telephony.send_sms(SMS)
    assert route.call_count == 1


@pytest.mark.parametrize(
    "error", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("server hung up")]
)
async def test_no_response_after_sending_create_call_is_ambiguous_and_not_retried(
    api: respx.MockRouter, telephony: TwilioTelephony, error: Exception
) -> None:
    route = api.post("/Calls.json").mock(side_effect=error)
    with pytest.raises(AmbiguousError):
        await telephony.place_call(CALL)
    assert route.call_count == 1


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")])
async def test_connect_failure_on_create_call_is_retried_because_nothing_was_sent(
    api: respx.MockRouter, telephony: TwilioTelephony, error: Exception
) -> None:
    route = api.post("/Calls.json").mock(side_effect=[error, httpx.Response(201, json=CALL_JSON)])
    ref = await telephony.place_call(CALL)
    assert ref.id == "CA1"
    assert route.call_count == 2


async def test_invalid_number_21211_is_permanent_invalid_number_without_retry(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.post("/Calls.json").respond(
        400, json=error_json(21211, 400, "The 'To' number +1415 is not a valid phone number.")
    )
    with pytest.raises(PermanentError) as caught:
        await telephony.place_call(CALL)
    assert (caught.value.kind, caught.value.code) == (PermanentErrorKind.INVALID_NUMBER, 21211)
    assert route.call_count == 1


async def test_opted_out_21610_on_sms_is_permanent_opted_out(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.post("/Messages.json").respond(
        400, json=error_json(21610, 400, "Attempt to send to unsubscribed recipient")
    )
    with pytest.raises(PermanentError) as caught:
        await telephony.send_sms(SMS)
    assert (caught.value.kind, caught.value.code) == (PermanentErrorKind.OPTED_OUT, 21610)
    assert route.call_count == 1


async def test_rfc9457_problem_body_is_mapped_like_a_legacy_one(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    api.post("/Messages.json").respond(
        400,
        json={"type": "https://www.twilio.com/docs/errors/21610", "title": "Unsubscribed",
              "status": 400, "code": 21610, "detail": "recipient replied STOP"},
    )  # fmt: skip
    with pytest.raises(PermanentError) as caught:
        await telephony.send_sms(SMS)
    assert caught.value.kind is PermanentErrorKind.OPTED_OUT


async def test_auth_failure_20003_is_permanent_auth(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    api.post("/Calls.json").respond(401, json=error_json(20003, 401, "Authenticate"))
    with pytest.raises(PermanentError) as caught:
        await telephony.place_call(CALL)
    assert (caught.value.kind, caught.value.code) == (PermanentErrorKind.AUTH, 20003)


@pytest.mark.parametrize(
    ("code", "kind"),
    [(21216, "blocked"), (21215, "blocked"), (21217, "invalid_number"), (21601, "other")],
)
async def test_other_refusals_map_to_their_kind(
    api: respx.MockRouter, telephony: TwilioTelephony, code: int, kind: str
) -> None:
    api.post("/Calls.json").respond(400, json=error_json(code, 400))
    with pytest.raises(PermanentError) as caught:
        await telephony.place_call(CALL)
    assert caught.value.kind == kind


# --- SMS -----------------------------------------------------------------------------------
async def test_sms_posts_body_status_callback_and_messaging_service(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.post("/Messages.json").respond(201, json=SMS_JSON)
    ref = await telephony.send_sms(SMS)
    assert (ref.id, ref.status) == ("SM1", "accepted")
    assert form(only_request(route)) == {
        "To": ["+8613800138000"],
        "StatusCallback": [f"{BASE}/v1/twilio/sms/status?attempt=att-2#{OVERRIDES}"],
        "MessagingServiceSid": ["MG1"],
        "Body": ["Hello. 回复TD退订"],
    }


async def test_sms_from_a_named_number_sends_from_instead_of_the_service(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.post("/Messages.json").respond(201, json=SMS_JSON)
    await telephony.send_sms(SmsRequest("att-3", "+14155550100", "Hi", "+14155550199"))
    body = form(only_request(route))
    assert body["From"] == ["+14155550199"]
    assert "MessagingServiceSid" not in body


# --- look-ups for the reconciler ----------------------------------------------------------
async def test_fetch_call_reads_status_and_answered_by(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    api.get("/Calls/CA1.json").respond(
        200,
        json={**CALL_JSON, "status": "completed", "duration": "42", "answered_by": "human",
              "start_time": "Mon, 03 Mar 2025 17:00:05 +0000"},
    )  # fmt: skip
    info = await telephony.fetch_call("CA1")
    assert (info.status, info.duration_seconds, info.answered_by) == ("completed", 42, "human")
    assert info.started_at == datetime(2025, 3, 3, 17, 0, 5, tzinfo=UTC)
    assert info.from_number == "+14155550199"


async def test_5xx_on_a_fetch_is_retried_because_reading_changes_nothing(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.get("/Messages/SM1.json").mock(
        side_effect=[
            httpx.Response(503, json=error_json(20503, 503)),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json={**SMS_JSON, "status": "undelivered", "error_code": 30003}),
        ]
    )
    info = await telephony.fetch_message("SM1")
    assert (info.status, info.error_code) == ("undelivered", 30003)
    assert route.call_count == 3


async def test_fetch_of_an_unknown_sid_is_not_found(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    api.get("/Calls/CA404.json").respond(404, json=error_json(20404, 404))
    with pytest.raises(NotFoundError):
        await telephony.fetch_call("CA404")


async def test_find_calls_lists_by_to_and_keeps_those_created_since(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    newer = {**CALL_JSON, "sid": "CA2", "date_created": "Mon, 03 Mar 2025 17:05:00 +0000"}
    older = {**CALL_JSON, "sid": "CA0", "date_created": "Mon, 03 Mar 2025 16:00:00 +0000"}
    route = api.get("/Calls.json").respond(
        200,
        json={"calls": [newer, CALL_JSON, older], "next_page_uri": None, "page": 0,
              "page_size": 50, "uri": f"/2010-04-01/Accounts/{SID}/Calls.json"},
    )  # fmt: skip
    found = await telephony.find_calls("+14155550100", datetime(2025, 3, 3, 17, 0, tzinfo=UTC))
    assert [c.sid for c in found] == ["CA2", "CA1"]
    params = only_request(route).url.params
    assert params["To"] == "+14155550100"


def messages_page(*messages: dict[str, object]) -> dict[str, object]:
    return {"messages": list(messages), "next_page_uri": None, "page": 0, "page_size": 50,
            "uri": f"/2010-04-01/Accounts/{SID}/Messages.json"}  # fmt: skip


async def test_find_messages_lists_by_to_and_date_sent_and_the_newest_still_queued(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    """Sent messages come from the `DateSent>=` filter; one still queued has no sent date
    (that filter leaves it out), so the newest to the number are read too; an older one
    and a duplicate across the two pages are dropped, newest first."""
    stamp = "Mon, 03 Mar 2025 17:0{}:00 +0000"
    sent = {**SMS_JSON, "sid": "SM2", "status": "delivered", "date_created": stamp.format(2),
            "date_sent": stamp.format(3)}  # fmt: skip
    queued = {**SMS_JSON, "sid": "SM3", "status": "queued", "date_created": stamp.format(5),
              "date_sent": None}  # fmt: skip
    older = {**SMS_JSON, "sid": "SM0", "status": "delivered",
             "date_created": "Mon, 03 Mar 2025 16:00:00 +0000",
             "date_sent": "Mon, 03 Mar 2025 16:00:01 +0000"}  # fmt: skip
    route = api.get("/Messages.json").mock(
        side_effect=[
            httpx.Response(200, json=messages_page(sent)),
            httpx.Response(200, json=messages_page(queued, sent, older)),
        ]
    )
    after = datetime(2025, 3, 3, 17, 0, tzinfo=UTC)
    found = await telephony.find_messages("+8613800138000", after)
    assert [(m.sid, m.status) for m in found] == [("SM3", "queued"), ("SM2", "delivered")]
    assert found[0].sent_at is None
    assert found[1].sent_at == datetime(2025, 3, 3, 17, 3, tzinfo=UTC)
    dated, newest = (call.request.url.params for call in route.calls)
    assert dated["To"] == newest["To"] == "+8613800138000"
    assert dated["DateSent>"] == "2025-03-03T17:00:00Z"  # sent as DateSent>=...
    assert "DateSent>" not in newest


async def test_5xx_on_find_messages_is_retried_because_reading_changes_nothing(
    api: respx.MockRouter, telephony: TwilioTelephony, sleeps: SleepRecorder
) -> None:
    route = api.get("/Messages.json").mock(
        side_effect=[
            httpx.Response(503, json=error_json(20500, 503)),
            httpx.Response(200, json=messages_page()),
            httpx.Response(200, json=messages_page()),
        ]
    )
    after = datetime(2025, 3, 3, 17, 0, tzinfo=UTC)
    assert await telephony.find_messages("+8613800138000", after) == []
    assert route.call_count == 3 and len(sleeps.waits) == 1


# --- updating a live call (voicemail after the beep) ------------------------------------
VOICEMAIL_URL = f"{BASE}/v1/twilio/voice/voicemail?attempt=att-1"


async def test_update_call_redirects_the_live_call_to_the_twiml_url(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.post("/Calls/CA1.json").respond(200, json={**CALL_JSON, "status": "in-progress"})
    assert await telephony.update_call("CA1", VOICEMAIL_URL) is None
    request = only_request(route)
    assert form(request) == {"Url": [VOICEMAIL_URL], "Method": ["POST"]}
    expected_auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_on_update_call_is_ambiguous_and_not_retried(
    api: respx.MockRouter, telephony: TwilioTelephony, sleeps: SleepRecorder, status: int
) -> None:
    """A redirect that may have acted is not sent again: it would restart the message."""
    route = api.post("/Calls/CA1.json").respond(status, json=error_json(20500, status))
    with pytest.raises(AmbiguousError):
        await telephony.update_call("CA1", VOICEMAIL_URL)
    assert route.call_count == 1 and sleeps.waits == []


async def test_update_of_a_call_no_longer_in_progress_is_permanent(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.post("/Calls/CA1.json").respond(
        400, json=error_json(21220, 400, "Call is not in-progress. Cannot redirect.")
    )
    with pytest.raises(PermanentError):
        await telephony.update_call("CA1", VOICEMAIL_URL)
    assert route.call_count == 1


async def test_429_on_update_call_is_retried_because_twilio_did_nothing(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    route = api.post("/Calls/CA1.json")
    route.side_effect = [
        httpx.Response(429, json=error_json(20429, 429, "Too Many Requests")),
        httpx.Response(200, json=CALL_JSON),
    ]
    await telephony.update_call("CA1", VOICEMAIL_URL)
    assert route.call_count == 2


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2025, 3, 3, 17, 0, tzinfo=UTC)
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Mon, 03 Mar 2025 17:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


# --- connection overrides ------------------------------------------------------------------
def test_the_default_overrides_ask_twilio_to_retry_5xx_and_connect_timeouts() -> None:
    """Twilio retries a callback only on a failed connect unless the URL's fragment says
    more (Webhooks connection overrides: rc retry count, rp retry policy)."""
    fragment = parse_qs(OVERRIDES)
    assert {"5xx", "ct"} <= set(fragment["rp"][0].split(","))
    assert int(fragment["rc"][0]) >= 1
    assert 100 <= int(fragment["ct"][0]) <= 10_000


async def test_every_callback_url_handed_to_twilio_carries_the_overrides(
    api: respx.MockRouter, telephony: TwilioTelephony
) -> None:
    calls = api.post("/Calls.json").respond(201, json=CALL_JSON)
    texts = api.post("/Messages.json").respond(201, json=SMS_JSON)
    await telephony.place_call(CALL)
    await telephony.send_sms(SMS)
    call, text = form(only_request(calls)), form(only_request(texts))
    urls = [call["Url"][0], call["StatusCallback"][0], call["AsyncAmdStatusCallback"][0]]
    urls.append(text["StatusCallback"][0])
    for url in urls:
        parts = urlsplit(url)
        assert parse_qs(parts.query)["attempt"] and parts.fragment == OVERRIDES, url


async def test_no_overrides_no_fragment(api: respx.MockRouter, sleeps: SleepRecorder) -> None:
    settings = TwilioSettings(SID, TOKEN, BASE, connection_overrides="")
    adapter = TwilioTelephony(settings, http_client=HttpxTwilioClient(), sleep=sleeps)
    route = api.post("/Calls.json").respond(201, json=CALL_JSON)
    await adapter.place_call(CALL)
    await adapter.close()
    assert form(only_request(route))["StatusCallback"] == [
        f"{BASE}/v1/twilio/voice/status?attempt=att-1"
    ]


@pytest.mark.parametrize(
    "bad",
    ["rc=5&rp=sometimes", "retries=3", "ct=50", "ct=20000", "rc=-1", "rc=9", "rc=1&rc=2", "rp"],
)
def test_overrides_outside_twilios_keys_and_bounds_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="connection override"):
        check_overrides(bad)
    with pytest.raises(ValueError, match="connection override"):
        TwilioTelephony(TwilioSettings(SID, TOKEN, BASE, connection_overrides=bad))
