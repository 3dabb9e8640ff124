"""The telephony simulator: every callback is signed as Twilio signs it, the voice flow
follows the service's TwiML, and the same seed plays the same morning."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from adapters.errors import NotFoundError, PermanentError
from adapters.ports import CallRequest, SmsRequest
from adapters.simulator import Mix, SimulatedTelephony, SimulatorSettings

TOKEN = "f" * 32
PUBLIC = "https://dialer.example.com"  # what the simulator signs against
POSTED = "http://127.0.0.1:9"  # where it actually posts (behind a "proxy")
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
GATHER = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="{url}" method="POST"'
    ' numDigits="1"><Say>press 1</Say></Gather></Response>'
)


class Service:
    """Plays the service: checks each signature against the public URL, answers TwiML."""

    def __init__(self) -> None:
        self.validator = RequestValidator(TOKEN)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.bad_signatures = 0
        self.answered = asyncio.Event()  # a call's TwiML was fetched: it is in progress

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url).startswith(POSTED)
        public = PUBLIC + str(request.url)[len(POSTED) :]
        fields = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        if not self.validator.validate(public, fields, request.headers["X-Twilio-Signature"]):
            self.bad_signatures += 1
            return httpx.Response(403)
        path = urlsplit(public).path
        self.requests.append((path, fields))
        query = dict(parse_qsl(urlsplit(public).query))
        if path.endswith("/voice/answer"):
            self.answered.set()
            url = f"{PUBLIC}/v1/twilio/voice/gather?attempt={query['attempt']}&amp;step=greeting"
            return httpx.Response(200, text=GATHER.format(url=url))
        if path.endswith("/voice/gather") and query.get("step") == "greeting":
            url = f"{PUBLIC}/v1/twilio/voice/gather?attempt={query['attempt']}&amp;step=menu"
            return httpx.Response(200, text=GATHER.format(url=url))
        if path.endswith("/voice/gather"):
            return httpx.Response(200, text="<Response><Hangup/></Response>")
        return httpx.Response(204)


def simulator(service: Service, seed: int = 7, mix: Mix | None = None) -> SimulatedTelephony:
    return SimulatedTelephony(
        SimulatorSettings(
            account_sid="AC" + "1" * 32,
            auth_token=TOKEN,
            public_base_url=PUBLIC,
            post_base_url=POSTED,
            seed=seed,
            mix=mix or Mix(),
            delay=(0.0, 0.0),
            first_delay=(0.0, 0.0),
        ),
        clock=lambda: NOW,
        http=httpx.AsyncClient(transport=httpx.MockTransport(service)),
    )


NUMBERS = [f"+1212555{i:04d}" for i in range(40)]


async def play(seed: int, mix: Mix | None = None) -> tuple[SimulatedTelephony, Service, list[str]]:
    service = Service()
    sim = simulator(service, seed, mix)
    sids = []
    for i, to in enumerate(NUMBERS):
        ref = await sim.place_call(CallRequest(f"a{i}", to, "+14155550100"))
        sids.append(ref.id)
        sms = await sim.send_sms(SmsRequest(f"s{i}", to, "hello"))
        sids.append(sms.id)
    assert await sim.drain(wait_seconds=10) == []
    await sim.close()
    return sim, service, sids


async def test_every_callback_is_signed_against_the_public_url() -> None:
    sim, service, _ = await play(7)
    assert service.bad_signatures == 0 and sim.stats.rejected == [] and sim.stats.errors == []
    paths = Counter(path for path, _ in service.requests)
    assert paths["/v1/twilio/voice/status"] >= 3 * len(NUMBERS)  # initiated, ringing, final
    assert paths["/v1/twilio/sms/status"] >= len(NUMBERS)
    # a human went through the greeting and the menu, as <Gather> posts them
    gathers = [f for p, f in service.requests if p == "/v1/twilio/voice/gather"]
    assert gathers and all(f["Digits"] in {"1", "2", "9"} for f in gathers)
    assert paths["/v1/twilio/voice/amd"] == sim.stats.calls["human"] + sim.stats.calls["machine"]


async def test_calls_end_in_a_final_status_the_reconciler_can_fetch() -> None:
    sim, service, sids = await play(7)
    finals = {"completed", "busy", "no-answer", "failed"}
    for sid in sids[::2]:
        info = await sim.fetch_call(sid)
        assert info.status in finals
        statuses = [
            f["CallStatus"]
            for p, f in service.requests
            if p == "/v1/twilio/voice/status" and f["CallSid"] == sid
        ]
        assert statuses[0] == "initiated" and statuses[-1] == info.status
        assert [int(f["SequenceNumber"]) for p, f in service.requests
                if p == "/v1/twilio/voice/status" and f["CallSid"] == sid] == list(
            range(len(statuses))
        )  # fmt: skip
        found = await sim.find_calls(info.to, NOW)
        assert [c.sid for c in found] == [sid]
    for sid in sids[1::2]:
        message = await sim.fetch_message(sid)
        assert message.status in {"delivered", "undelivered", "failed"}
        assert await sim.find_messages(message.to, NOW) == [message]
        assert (message.sent_at is None) == (message.status == "failed")
        assert (message.error_code is None) == (message.status == "delivered")


async def test_the_same_seed_plays_the_same_morning() -> None:
    first, one, sids_one = await play(11)
    second, two, sids_two = await play(11)
    third, _, sids_three = await play(12)
    assert sids_one == sids_two and sids_one != sids_three
    assert first.stats.calls == second.stats.calls and first.stats.keys == second.stats.keys
    assert first.stats.sms == second.stats.sms
    assert one.requests == two.requests
    assert (first.stats.calls, first.stats.keys) != (third.stats.calls, third.stats.keys)


async def test_the_mix_decides_outcomes_and_stop_replies() -> None:
    mix = Mix(
        call={"busy": 1.0},
        sms={"delivered": 1.0},
        sms_stop=1.0,
    )
    sim, service, _ = await play(3, mix)
    assert sim.stats.calls == Counter({"busy": len(NUMBERS)})
    stops = [f for p, f in service.requests if p == "/v1/twilio/sms/inbound"]
    assert sorted(f["From"] for f in stops) == sorted(NUMBERS)
    assert {f["Body"] for f in stops} == {"STOP"}


async def test_a_live_call_is_redirected_and_an_ended_one_refuses() -> None:
    service = Service()
    sim = SimulatedTelephony(
        SimulatorSettings(
            account_sid="AC" + "1" * 32,
            auth_token=TOKEN,
            public_base_url=PUBLIC,
            post_base_url=POSTED,
            mix=Mix(call={"human": 1.0}),
            delay=(0.05, 0.05),
            first_delay=(0.0, 0.0),
        ),
        clock=lambda: NOW,
        http=httpx.AsyncClient(transport=httpx.MockTransport(service)),
    )
    sid = (await sim.place_call(CallRequest("a1", "+12125550100", "+14155550100"))).id
    await service.answered.wait()
    assert (await sim.fetch_call(sid)).status == "in-progress"
    url = f"{PUBLIC}/v1/twilio/voice/voicemail?attempt=a1"
    await sim.update_call(sid, url)
    assert await sim.drain(wait_seconds=10) == []
    assert sim.redirects[sid] == [url]
    assert ("/v1/twilio/voice/voicemail", sim._gather_fields(sid, CallRequest(
        "a1", "+12125550100", "+14155550100"), None)) in service.requests  # fmt: skip
    assert service.bad_signatures == 0
    with pytest.raises(PermanentError) as refused:
        await sim.update_call(sid, url)  # completed by now
    assert refused.value.code == 21220
    with pytest.raises(NotFoundError):  # not a call sid at all
        await sim.update_call("SM" + "0" * 32, url)
    # A call sid this simulator did not place (another process's, as with `dialer serve`
    # and `dialer worker` apart): redirected as Twilio would, by fetching the TwiML.
    other = "CA" + "0" * 32
    await sim.update_call(other, url)
    assert sim.redirects[other] == [url]
    await sim.close()


HOLD = '<Response><Pause length="1"/><Redirect method="POST">{url}</Redirect></Response>'


class WaitingService(Service):
    """The service of an agent-mode call: the verified person waits for a collector
    (a pause, then a redirect to the hold route), then is put through."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        public = PUBLIC + str(request.url)[len(POSTED) :]
        fields = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        if not self.validator.validate(public, fields, request.headers["X-Twilio-Signature"]):
            self.bad_signatures += 1
            return httpx.Response(403)
        path = urlsplit(public).path
        self.requests.append((path, fields))
        attempt = dict(parse_qsl(urlsplit(public).query)).get("attempt")
        if path.endswith("/voice/answer"):
            url = f"{PUBLIC}/v1/twilio/voice/gather?attempt={attempt}&amp;step=greeting"
            return httpx.Response(200, text=GATHER.format(url=url))
        if path.endswith("/voice/gather"):
            url = f"{PUBLIC}/v1/twilio/voice/hold?attempt={attempt}&amp;since=2026-12-01"
            return httpx.Response(200, text=HOLD.format(url=url))
        if path.endswith("/voice/hold"):
            return httpx.Response(200, text="<Response><Dial><Client>a</Client></Dial></Response>")
        return httpx.Response(204)


async def test_a_caller_waiting_for_a_collector_follows_the_redirect_signed() -> None:
    service = WaitingService()
    sim = SimulatedTelephony(
        SimulatorSettings(
            account_sid="AC" + "1" * 32,
            auth_token=TOKEN,
            public_base_url=PUBLIC,
            post_base_url=POSTED,
            mix=Mix(call={"human": 1.0}),
            delay=(0.0, 0.0),
            first_delay=(0.0, 0.0),
            pause_scale=0.0,
        ),
        clock=lambda: NOW,
        http=httpx.AsyncClient(transport=httpx.MockTransport(service)),
    )
    await sim.place_call(CallRequest("a0", NUMBERS[0], "+14155550100"))
    assert await sim.drain(wait_seconds=10) == []
    await sim.close()
    assert service.bad_signatures == 0 and sim.stats.rejected == []
    holds = [f for p, f in service.requests if p == "/v1/twilio/voice/hold"]
    assert len(holds) == 1 and "Digits" not in holds[0]


async def test_a_call_placed_without_machine_detection_gets_no_amd_callback() -> None:
    """Agent modes dial without detection (`predictive.MACHINE_DETECTION`): Twilio then
    posts no AnsweredBy, so neither does the simulator."""
    service = Service()
    sim = simulator(service, 7, Mix(call={"human": 1.0}))
    await sim.place_call(CallRequest("p1", NUMBERS[0], "+14155550100", machine_detection=False))
    await sim.place_call(CallRequest("i1", NUMBERS[1], "+14155550100"))
    assert await sim.drain(wait_seconds=10) == []
    await sim.close()
    amd = [f for p, f in service.requests if p == "/v1/twilio/voice/amd"]
    assert sim.stats.calls["human"] == 2
    assert [f["To"] for f in amd] == [NUMBERS[1]]  # the call that asked for detection
