"""The engine's input errors through the API: an attempt naming what the case does not
hold, or a strategy previewed under a profile it may not run under, is 422 naming the
field, never a silent decision or a 500. A decision shows its refusals' disclosure and
its warnings."""

from __future__ import annotations

from typing import Any

from dialer.core.auth import Role
from strategy.presets import load_preset
from tests.dialer.factories import cn_case
from tests.dialer.support import Api


def _preview(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "case": cn_case(),
        "at": "2026-12-01T10:00:00+08:00",
        "strategy": load_preset("consumer-loan").model_dump(mode="json"),
        "profile": "cn-consumer",
    }
    body.update(overrides)
    return body


def _attempt(party_id: str, cp_id: str, hour: int) -> dict[str, Any]:
    return {
        "at": f"2026-12-01T0{hour}:00:00+08:00",
        "channel": "voice",
        "party_id": party_id,
        "contact_point_id": cp_id,
        "result": "right_party",
    }


async def test_preview_with_an_attempt_naming_an_unknown_party_is_422(api: Api) -> None:
    attempts = [_attempt("debtor", "cp-0-0", 8), _attempt("debtr", "cp-0-0", 9)]
    body = _preview(history={"attempts": attempts})
    r = await api.client.post("/v1/decisions/preview", json=body, headers=api.auth(Role.AGENT))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["fields"][0]["field"] == "history.attempts[1].party_id"
    assert "debtr" in error["message"]


async def test_preview_with_an_unknown_contact_point_is_422(api: Api) -> None:
    body = _preview(history={"attempts": [_attempt("debtor", "cp-9-9", 8)]})
    r = await api.client.post("/v1/decisions/preview", json=body, headers=api.auth(Role.AGENT))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["fields"][0]["field"] == "history.attempts[0].contact_point_id"


async def test_preview_under_a_profile_the_strategy_is_not_written_for_is_422(api: Api) -> None:
    body = _preview(profile="commercial")
    r = await api.client.post("/v1/decisions/preview", json=body, headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["fields"][0]["field"] == "profile"
    assert "cn-consumer" in error["message"] and "commercial" in error["message"]


async def test_preview_shows_refusal_disclosure_and_warnings(api: Api) -> None:
    r = await api.client.post(
        "/v1/decisions/preview", json=_preview(), headers=api.auth(Role.AGENT)
    )
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["warnings"] == []
    third = [x for x in d["refused"] if x["candidate"]["party_role"] == "third_party"]
    assert third and third[0]["disclosure"] == "none"
    later = _preview(at="2027-03-02T10:00:00+08:00")
    d = (
        await api.client.post("/v1/decisions/preview", json=later, headers=api.auth(Role.AGENT))
    ).json()
    assert [w["rule"] for w in d["warnings"]] == ["calendar.no_published_schedule"]
