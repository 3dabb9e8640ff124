"""Issue 17: with `dialer serve` and `dialer worker` apart, the API's simulator is asked to
redirect (voicemail) a call that the worker's simulator placed. It fetches the voicemail
TwiML itself, signed like Twilio, instead of failing with NotFoundError."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from adapters.errors import NotFoundError
from adapters.simulator import SimulatedTelephony, SimulatorSettings

BASE = "http://127.0.0.1:8000"


async def test_a_simulator_redirects_a_call_another_process_placed() -> None:
    posted: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append(request)
        return httpx.Response(200, text="<Response/>")

    api_side = SimulatedTelephony(
        SimulatorSettings(account_sid="AC" + "1" * 32, auth_token="shared", public_base_url=BASE),
        http=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )
    sid = "CA" + "f" * 32  # placed by the worker's simulator: unknown here
    url = f"{BASE}/v1/twilio/voice/voicemail?attempt=0b7c7a52-9c8e-4a53-9d2c-2a8a1f0e5d11#rc=2"
    await api_side.update_call(sid, url)
    assert await api_side.drain(wait_seconds=5) == []
    (request,) = posted
    public = url.split("#")[0]
    assert str(request.url) == public
    fields = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert fields["CallSid"] == sid and fields["CallStatus"] == "in-progress"
    signature = request.headers["X-Twilio-Signature"]
    assert RequestValidator("shared").validate(public, fields, signature)
    assert api_side.redirects[sid] == [url]
    with pytest.raises(NotFoundError):  # not a call SID at all
        await api_side.update_call("SM" + "0" * 32, url)
    await api_side.close()
