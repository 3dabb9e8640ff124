"""Campaigns and dead letters over HTTP: the lifecycle, progress, the error shape."""

from __future__ import annotations

from typing import Any

from adapters.inprocess import InProcessJobQueue
from adapters.rabbitmq import RabbitJobQueue
from adapters.twilio import TwilioTelephony
from adapters.unconfigured import UnconfiguredTelephony
from dialer.core.auth import Role
from dialer.core.settings import Settings
from dialer.dispatch.runtime import build_queue, build_telephony
from tests.dialer.support import Api

BODY: dict[str, Any] = {
    "name": "morning",
    "portfolio": "cn-loans",
    "channels": ["voice", "sms"],
    "window": "09:00-11:30",
    "pacing_cps": 5,
    "max_in_progress": 20,
}


async def test_campaign_lifecycle_and_progress(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    r = await api.client.post("/v1/campaigns", json=BODY, headers=h)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["status"] == "draft" and c["window"] == "09:00-11:30"
    cid = c["id"]
    for verb, status in (("start", "running"), ("pause", "paused"), ("resume", "running")):
        r = await api.client.post(f"/v1/campaigns/{cid}/{verb}", headers=h)
        assert r.status_code == 200 and r.json()["status"] == status, r.text
    r = await api.client.post(f"/v1/campaigns/{cid}/start", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    r = await api.client.get(f"/v1/campaigns/{cid}/progress", headers=h)
    assert r.status_code == 200
    assert r.json()["planned"] == 0 and r.json()["status"] == "running"
    r = await api.client.get("/v1/campaigns", params={"status": "running"}, headers=h)
    assert [x["id"] for x in r.json()["items"]] == [cid]
    r = await api.client.post(f"/v1/campaigns/{cid}/cancel", headers=h)
    assert r.json()["status"] == "cancelled" and r.json()["finished_at"]


async def test_invalid_campaigns_are_422_and_unknown_ones_404(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    for change, field in (
        ({"window": "11:30-09:00"}, "window"),
        ({"window": "9am"}, "window"),
        ({"channels": ["fax"]}, "channels[0]"),
        ({"pacing_cps": 0}, "pacing_cps"),
        ({"portfolio": "nope"}, "portfolio"),
    ):
        r = await api.client.post("/v1/campaigns", json={**BODY, **change}, headers=h)
        assert r.status_code == 422, r.text
        assert field in {f["field"] for f in r.json()["error"]["fields"]}, r.text
    r = await api.client.get(
        "/v1/campaigns/00000000-0000-0000-0000-000000000000/progress", headers=h
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_dead_letters_are_listed_and_replayed(api: Api) -> None:
    h = api.auth(Role.SUPERVISOR)
    assert (await api.client.get("/v1/dead-letters", headers=h)).json() == {
        "items": [],
        "next_cursor": None,
    }
    r = await api.client.post("/v1/dead-letters/replay", json={"message_ids": ["x"]}, headers=h)
    assert r.status_code == 200 and r.json() == {"replayed": 0}


def test_the_composition_root_picks_adapters_from_settings() -> None:
    plain = Settings(database_url="sqlite+aiosqlite:///:memory:")
    assert isinstance(build_queue(plain), InProcessJobQueue)
    assert isinstance(build_telephony(plain), UnconfiguredTelephony)
    wired = Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        queue_url="amqp://guest:guest@127.0.0.1:5672/",
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="secret",  # type: ignore[arg-type]
    )
    assert isinstance(build_queue(wired), RabbitJobQueue)  # built, not connected
    assert isinstance(build_telephony(wired), TwilioTelephony)
