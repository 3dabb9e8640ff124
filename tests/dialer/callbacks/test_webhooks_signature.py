"""X-Twilio-Signature: our check agrees with twilio-python's RequestValidator, and a forged
or missing signature is a 403 that writes nothing."""

from __future__ import annotations

import pytest
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from dialer.callbacks.signature import compute_signature, is_valid, public_url
from dialer.core.auth import Role
from tests.dialer.support import Api
from tests.dialer.twilio_forms import BASE, TOKEN, Hooks, call_status, configure, signature


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


URLS = [
    "https://dialer.example.com/v1/twilio/voice/status?attempt=8f1c",
    "https://dialer.example.com:443/v1/twilio/voice/status?attempt=8f1c",
    "http://dialer.example.com:8080/v1/twilio/sms/status?attempt=a%20b&x=%E9%80%80",
    "https://dialer.example.com/prefix/v1/twilio/sms/inbound",
]
FIELDS = [
    [("CallSid", "CA1"), ("CallStatus", "ringing"), ("SequenceNumber", "1")],
    [("Body", "退订"), ("From", "+8613800138000"), ("Empty", "")],
    [("StatusCallbackEvent", "ringing"), ("StatusCallbackEvent", "answered"), ("A", "1")],
    [("B", "2"), ("B", "1"), ("B", "2")],
    [],
]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("fields", FIELDS)
def test_signature_agrees_with_twilio_request_validator(
    url: str, fields: list[tuple[str, str]]
) -> None:
    theirs = signature(url, fields)
    assert compute_signature(TOKEN, url, fields) == theirs
    assert is_valid(TOKEN, url, fields, theirs)
    validator = RequestValidator(TOKEN)
    ours_for_them = compute_signature(TOKEN, url, fields)
    assert validator.validate(url, ImmutableMultiDict(fields), ours_for_them)


def test_port_variants_are_accepted_like_request_validator_does() -> None:
    fields = [("CallSid", "CA1")]
    with_port = "https://dialer.example.com:443/v1/twilio/voice/status?attempt=1"
    without = "https://dialer.example.com/v1/twilio/voice/status?attempt=1"
    assert is_valid(TOKEN, without, fields, signature(with_port, fields))
    assert is_valid(TOKEN, with_port, fields, signature(without, fields))


def test_changed_url_field_or_token_fails() -> None:
    url, fields = URLS[0], FIELDS[0]
    good = signature(url, fields)
    assert not is_valid(TOKEN, url + "x", fields, good)
    assert not is_valid(TOKEN, url, [*fields[:-1], ("SequenceNumber", "2")], good)
    assert not is_valid("another-token", url, fields, good)
    assert not is_valid(TOKEN, url, fields, None)
    assert not is_valid("", url, fields, signature(url, fields, token=""))


def test_public_url_keeps_the_raw_path_and_query() -> None:
    assert (
        public_url("https://x.example.com/", b"/v1/a%2Fb", b"attempt=a%20b")
        == "https://x.example.com/v1/a%2Fb?attempt=a%20b"
    )
    assert public_url("https://x.example.com", b"/v1/a", b"") == "https://x.example.com/v1/a"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/twilio/voice/status",
        "/v1/twilio/voice/amd",
        "/v1/twilio/voice/answer",
        "/v1/twilio/voice/gather",
        "/v1/twilio/voice/hold",
        "/v1/twilio/sms/status",
        "/v1/twilio/sms/inbound",
    ],
)
async def test_forged_or_missing_signature_is_403_and_writes_nothing(
    hooks: Hooks, path: str
) -> None:
    case = await hooks.case()
    attempt = await hooks.add_attempt(case, sid="CA" + "1" * 32)
    fields = call_status("CA" + "1" * 32, "completed", 5)
    forged = await hooks.post(path, fields, attempt=attempt.id, token="not-the-token")
    assert forged.status_code == 403, forged.text
    assert forged.json()["error"]["code"] == "forbidden"
    wrong_url = await hooks.post(
        path, fields, attempt=attempt.id, sign_url=f"{BASE}/v1/twilio/elsewhere"
    )
    assert wrong_url.status_code == 403
    missing = await hooks.client.post(f"{path}?attempt={attempt.id}", data=fields)
    assert missing.status_code == 403
    assert missing.json()["error"]["code"] == "forbidden"
    assert await hooks.events() == []
    assert (await hooks.attempt(attempt.id)).state == "sent"


async def test_the_api_key_does_not_replace_the_signature(hooks: Hooks, api: Api) -> None:
    r = await hooks.client.post(
        "/v1/twilio/voice/status", data=call_status("CA1", "ringing", 1),
        headers=api.auth(Role.ADMIN),
    )  # fmt: skip
    assert r.status_code == 403


async def test_malformed_body_is_400_not_500(hooks: Hooks) -> None:
    for body in (b"CallSid=%ff%fe&CallStatus=ringing",):
        r = await hooks.client.post(
            "/v1/twilio/voice/status",
            content=body,
            headers={
                "X-Twilio-Signature": "x",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "bad_request"
    # signed but missing the fields a status callback must carry
    r = await hooks.post("/v1/twilio/voice/status", {"AccountSid": "AC1"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    r = await hooks.post("/v1/twilio/voice/status", call_status("CA1", "exploded", 1))
    assert r.status_code == 400
    r = await hooks.post(
        "/v1/twilio/voice/status", call_status("CA1", "ringing", 1, SequenceNumber="x")
    )
    assert r.status_code == 400
    assert await hooks.events() == []


async def test_oversized_body_is_413_and_writes_nothing(hooks: Hooks) -> None:
    r = await hooks.post("/v1/twilio/sms/inbound", {"Body": "x" * 70_000, "From": "+1"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert await hooks.events() == []


async def test_signature_is_checked_against_the_public_url_not_the_one_seen(
    hooks: Hooks,
) -> None:
    """Behind a TLS-terminating proxy the app sees http://test/...; Twilio signed https."""
    fields = call_status("CA1", "ringing", 1)
    seen = await hooks.post(
        "/v1/twilio/voice/status", fields, sign_url="http://test/v1/twilio/voice/status"
    )
    assert seen.status_code == 403
    public = await hooks.post("/v1/twilio/voice/status", fields)
    assert public.status_code == 204
