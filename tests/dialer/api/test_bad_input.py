"""Bad input gets a 4xx in the one error shape naming its field (or line), never a 500:
date-times at the edges of time and JSON numbers as date-times, NUL characters, integers
past what a column holds, a near-zero pacing rate. Both databases."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from dialer.core.auth import Role
from dialer.services.paging import encode_cursor
from strategy.presets import load_preset
from tests.dialer.factories import cn_case
from tests.dialer.support import Api

EDGE_DATE_TIMES = [
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-05:00",  # past year 9999 in UTC
    "0001-01-01T00:00:00-05:00",
]
NOT_DATE_TIMES: list[Any] = [0, 0.0, 1733011200, "0", "1733011200"]


async def _world(api: Api) -> dict[str, str]:
    """A case with a contact point and an active strategy, plus a draft to simulate."""
    h = api.auth(Role.ADMIN)
    case = (await api.client.post("/v1/cases", json=cn_case(), headers=h)).json()
    doc = load_preset("consumer-loan").model_dump(mode="json")
    ids = []
    for _ in range(2):
        r = await api.client.post(
            "/v1/strategies", json={"portfolio": "cn-loans", "document": doc}, headers=h
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = await api.client.post(f"/v1/strategies/{ids[0]}/activate", headers=h)
    assert r.status_code == 200, r.text
    return {
        "case": case["id"],
        "cp": case["parties"][0]["contact_points"][0]["id"],
        "draft": ids[1],
    }


def _assert_422_naming(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert field in [f["field"] for f in error["fields"]], error


async def _send_at(api: Api, ids: dict[str, str], where: str, at: Any) -> tuple[Any, str]:
    """The request of `where` with `at` as its date-time; returns it and the field named."""
    h, c = api.auth(Role.ADMIN), api.client
    if where == "decision":
        value = at if isinstance(at, str) else str(at)
        return await c.get(f"/v1/cases/{ids['case']}/decision?at={quote(value)}", headers=h), "at"
    if where == "preview":
        body = {"case": cn_case(), "at": at, "portfolio": "cn-loans"}
        return await c.post("/v1/decisions/preview", json=body, headers=h), "at"
    if where == "preview history":
        body = {
            "case": cn_case(),
            "at": "2026-12-01T10:00:00+08:00",
            "portfolio": "cn-loans",
            "history": {"payments": [{"at": at, "amount": "1.00"}]},
        }
        return await c.post("/v1/decisions/preview", json=body, headers=h), "history.payments[0].at"
    if where == "simulate":
        url = f"/v1/strategies/{ids['draft']}/simulate"
        return await c.post(url, json={"at": at}, headers=h), "at"
    if where == "refresh":
        url = "/v1/portfolios/cn-loans/assignments/refresh"
        return await c.post(url, json={"at": at}, headers=h), "at"
    if where == "payment":
        url = f"/v1/cases/{ids['case']}/payments"
        return await c.post(url, json={"at": at, "amount": "10.00"}, headers=h), "at"
    assert where == "outcome"
    body = {"contact_point_id": ids["cp"], "channel": "voice", "result": "no_answer", "at": at}
    return await c.post(f"/v1/cases/{ids['case']}/outcomes", json=body, headers=h), "at"


PLACES = ["decision", "preview", "preview history", "simulate", "refresh", "payment", "outcome"]


async def test_date_times_at_the_edges_of_time_are_422_naming_the_field(api: Api) -> None:
    ids = await _world(api)
    for where in PLACES:
        for at in EDGE_DATE_TIMES:
            response, field = await _send_at(api, ids, where, at)
            _assert_422_naming(response, field)


async def test_a_number_is_not_a_date_time(api: Api) -> None:
    """`{"at": 0.0}` was read as 1970-01-01 and re-tiered a portfolio as of then."""
    ids = await _world(api)
    for where in PLACES:
        for at in NOT_DATE_TIMES:
            response, field = await _send_at(api, ids, where, at)
            _assert_422_naming(response, field)
    audit = await api.client.get("/v1/audit", headers=api.auth(Role.ADMIN))
    assert not [e for e in audit.json()["items"] if e["action"].startswith("assignment")]


async def test_date_times_inside_the_years_served_are_decided(api: Api) -> None:
    """The bounds are not a new 500 either: the first and last instants are decided."""
    ids = await _world(api)
    for where in PLACES:
        for at in ("1900-01-01T00:00:00+14:00", "2099-12-31T23:59:59-12:00"):
            response, _ = await _send_at(api, ids, where, at)
            assert response.status_code in (200, 201), (where, at, response.text)


async def test_a_nul_character_in_a_body_field_is_422_naming_it(api: Api) -> None:
    h = api.auth(Role.ADMIN)
    ids = await _world(api)
    doc = cn_case("NUL-1")
    doc["parties"][0]["name"] = "Wang\x00Fang"
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/v1/cases", cn_case("A\x00B"), "external_ref"),
        ("POST", "/v1/cases", doc, "parties[0].name"),
        ("PATCH", f"/v1/cases/{ids['case']}", {"currency": "CN\x00"}, "currency"),
        (
            "POST",
            f"/v1/cases/{ids['case']}/outcomes",
            {"contact_point_id": ids["cp"], "channel": "voice", "result": "no_answer"}
            | {"notes": "said\x00no"},
            "notes",
        ),
        ("POST", "/v1/keys", {"role": "agent", "name": "agent\x007"}, "name"),
        ("PUT", f"/v1/cases/{ids['case']}/assignment", {"team": "t\x00"}, "team"),
        (
            "POST",
            "/v1/strategies/validate",
            {"portfolio": "cn-loans", "document": {"name\x00": "x"}},
            "document",
        ),
    ]
    for method, url, body, field in cases:
        response = await api.client.request(method, url, json=body, headers=h)
        _assert_422_naming(response, field)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/v1/cases?portfolio=cn%00loans", "portfolio"),
        ("/v1/cases?agent=%00", "agent"),
        ("/v1/audit?entity=case%00", "entity"),
        ("/v1/tasks?status=open%00", "status"),
        ("/v1/campaigns?portfolio=%00", "portfolio"),
        ("/v1/strategies?portfolio=%00", "portfolio"),
        ("/v1/portfolios/cn%00loans", "path"),
    ],
)
async def test_a_nul_character_in_a_filter_or_path_is_422_naming_it(
    api: Api, url: str, field: str
) -> None:
    response = await api.client.get(url, headers=api.auth(Role.ADMIN))
    _assert_422_naming(response, field)


async def test_integers_past_what_a_column_holds_are_422_naming_the_field(api: Api) -> None:
    h = api.auth(Role.ADMIN)
    for key in (2**63, 2**64, -1):  # an audit cursor holds the last row's BIGINT id
        cursor = encode_cursor([key])
        response = await api.client.get("/v1/audit", params={"cursor": cursor}, headers=h)
        _assert_422_naming(response, "cursor")
    cursor = encode_cursor([2**63 - 1])
    ok = await api.client.get("/v1/audit", params={"cursor": cursor}, headers=h)
    assert ok.status_code == 200 and ok.json() == {"items": [], "next_cursor": None}
    campaign = {
        "name": "m",
        "portfolio": "cn-loans",
        "channels": ["voice"],
        "window": "09:00-11:00",
        "pacing_cps": 1,
    }
    for limit in (2**31, 2**63, 2**64):
        response = await api.client.post(
            "/v1/campaigns", json=campaign | {"max_in_progress": limit}, headers=h
        )
        _assert_422_naming(response, "max_in_progress")


async def test_pacing_below_one_call_per_100_seconds_is_422(api: Api) -> None:
    """`5e-324` was accepted, and every job of the campaign overflowed the slot clock
    (OverflowError) and was dead-lettered; the campaign never finished."""
    h = api.auth(Role.ADMIN)
    campaign = {
        "name": "m",
        "portfolio": "cn-loans",
        "channels": ["voice"],
        "window": "09:00-11:00",
    }
    for cps in (5e-324, 1e-9, 0.009, 0, -1, 1001):
        response = await api.client.post(
            "/v1/campaigns", json=campaign | {"pacing_cps": cps}, headers=h
        )
        _assert_422_naming(response, "pacing_cps")
    ok = await api.client.post("/v1/campaigns", json=campaign | {"pacing_cps": 0.01}, headers=h)
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window": "9:00-11:00"}, "window"),
        ({"window": "09:00-24:30"}, "window"),
        ({"window": " 09:00-11:00"}, "window"),
    ],
)
async def test_a_window_off_its_declared_pattern_is_422(
    api: Api, body: dict[str, Any], field: str
) -> None:
    campaign = {"name": "m", "portfolio": "cn-loans", "channels": ["voice"], "pacing_cps": 1}
    response = await api.client.post(
        "/v1/campaigns", json=campaign | body, headers=api.auth(Role.ADMIN)
    )
    _assert_422_naming(response, field)
