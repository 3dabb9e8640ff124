from __future__ import annotations

import json

from dialer.core.auth import Role
from tests.dialer.factories import cn_case, us_case
from tests.dialer.support import Api


async def test_create_case_normalises_phones_to_e164(api: Api) -> None:
    r = await api.client.post("/v1/cases", json=cn_case(), headers=api.auth(Role.AGENT))
    assert r.status_code == 201, r.text
    body = r.json()
    values = [cp["value"] for cp in body["parties"][0]["contact_points"]]
    assert values == ["+8613800138000", "+8613912345678"]
    assert body["parties"][1]["contact_points"][0]["timezone"] is None  # unknown stays empty
    assert body["amount"] == "12000.00"


async def test_email_domain_is_lowercased_and_us_number_uses_portfolio_region(api: Api) -> None:
    r = await api.client.post("/v1/cases", json=us_case(), headers=api.auth(Role.SERVICE))
    assert r.status_code == 201, r.text
    points = r.json()["parties"][0]["contact_points"]
    assert [p["value"] for p in points] == ["+12125550199", "jordan.miles@example.com"]


async def test_invalid_phone_is_422_naming_the_field(api: Api) -> None:
    doc = cn_case()
    doc["parties"][0]["contact_points"][1]["value"] = "12345"
    r = await api.client.post("/v1/cases", json=doc, headers=api.auth(Role.AGENT))
    assert r.status_code == 422
    fields = r.json()["error"]["fields"]
    assert [f["field"] for f in fields] == ["parties[0].contact_points[1].value"]


async def test_schema_error_is_422_in_the_error_shape(api: Api) -> None:
    doc = cn_case(amount="-1", currency="yuan")
    r = await api.client.post("/v1/cases", json=doc, headers=api.auth(Role.AGENT))
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert {f["field"] for f in error["fields"]} == {"amount", "currency"}


async def test_a_body_that_is_not_json_is_422_naming_the_body_and_the_decoder_error(
    api: Api,
) -> None:
    headers = api.auth(Role.AGENT) | {"content-type": "application/json"}
    r = await api.client.post("/v1/cases", content=b'{"external_ref": ', headers=headers)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    [field] = error["fields"]
    assert field["field"] == "body"
    assert field["reason"] == "not valid JSON at offset 17: Expecting value"


async def test_unknown_portfolio_is_422(api: Api) -> None:
    r = await api.client.post(
        "/v1/cases", json=cn_case(portfolio="nope"), headers=api.auth(Role.AGENT)
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "portfolio"


async def test_duplicate_external_ref_is_409(api: Api) -> None:
    h = api.auth(Role.AGENT)
    assert (await api.client.post("/v1/cases", json=cn_case(), headers=h)).status_code == 201
    r = await api.client.post("/v1/cases", json=cn_case(), headers=h)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"


async def test_get_unknown_case_is_404(api: Api) -> None:
    r = await api.client.get(
        "/v1/cases/00000000-0000-0000-0000-000000000000", headers=api.auth(Role.AGENT)
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_update_case_changes_fields_and_is_audited(api: Api) -> None:
    created = (
        await api.client.post("/v1/cases", json=cn_case(), headers=api.auth(Role.AGENT))
    ).json()
    r = await api.client.patch(
        f"/v1/cases/{created['id']}",
        json={"balance": "500.00", "flags": ["dispute"]},
        headers=api.auth(Role.SERVICE),
    )
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == "500.00"
    assert r.json()["flags"] == ["dispute"]
    audit = await api.client.get(
        "/v1/audit", params={"entity_id": created["id"]}, headers=api.auth(Role.SUPERVISOR)
    )
    actions = [e["action"] for e in audit.json()["items"]]
    assert actions == ["case.create", "case.update"]
    assert audit.json()["items"][1]["actor"] == "service:service-1"


async def test_update_case_cannot_null_a_required_field(api: Api) -> None:
    created = (
        await api.client.post("/v1/cases", json=cn_case(), headers=api.auth(Role.AGENT))
    ).json()
    r = await api.client.patch(
        f"/v1/cases/{created['id']}", json={"amount": None}, headers=api.auth(Role.SERVICE)
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "amount"


async def test_list_cases_filters_and_pages_with_an_opaque_cursor(api: Api) -> None:
    h = api.auth(Role.SERVICE)
    for i in range(5):
        assert (
            await api.client.post("/v1/cases", json=cn_case(f"CN-{i}"), headers=h)
        ).status_code == 201
    assert (await api.client.post("/v1/cases", json=us_case(), headers=h)).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params = {"portfolio": "cn-loans", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/v1/cases", params=params, headers=h)).json()
        seen += [c["external_ref"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"CN-{i}" for i in range(5)]
    us = (await api.client.get("/v1/cases", params={"portfolio": "us-loans"}, headers=h)).json()
    assert [c["external_ref"] for c in us["items"]] == ["US-1"]
    none = await api.client.get("/v1/cases", params={"status": "settled"}, headers=h)
    assert none.json() == {"items": [], "next_cursor": None}


async def test_bad_cursor_is_422(api: Api) -> None:
    r = await api.client.get("/v1/cases", params={"cursor": "%%%"}, headers=api.auth(Role.AGENT))
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "cursor"


async def test_add_party_and_contact_point(api: Api) -> None:
    h = api.auth(Role.AGENT)
    case = (await api.client.post("/v1/cases", json=cn_case(), headers=h)).json()
    r = await api.client.post(
        f"/v1/cases/{case['id']}/parties",
        json={
            "ref": "ref-2",
            "role": "third_party",
            "name": "Zhao Lei",
            "relation": "relative",
            "contact_points": [{"kind": "phone", "value": "bad"}],
        },
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "contact_points[0].value"
    r = await api.client.post(
        f"/v1/cases/{case['id']}/parties",
        json={"ref": "ref-2", "role": "third_party", "name": "Zhao Lei", "relation": "relative"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    party = r.json()["parties"][2]
    r = await api.client.post(
        f"/v1/cases/{case['id']}/parties/{party['id']}/contact-points",
        json={"kind": "phone", "value": "136 0013 6000"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["parties"][2]["contact_points"][0]["value"] == "+8613600136000"
    r = await api.client.post(
        f"/v1/cases/{case['id']}/parties/{party['id']}/contact-points",
        json={"kind": "phone", "value": "999"},
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "value"


async def test_update_party_and_contact_point(api: Api) -> None:
    h = api.auth(Role.AGENT)
    case = (await api.client.post("/v1/cases", json=cn_case(), headers=h)).json()
    party = case["parties"][1]
    r = await api.client.patch(
        f"/v1/cases/{case['id']}/parties/{party['id']}",
        json={"refused_contact": True},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["parties"][1]["refused_contact"] is True
    r = await api.client.patch(
        f"/v1/cases/{case['id']}/parties/{party['id']}",
        json={"refused_contact": False},
        headers=h,
    )
    assert r.status_code == 403
    cp = case["parties"][0]["contact_points"][0]
    r = await api.client.patch(
        f"/v1/contact-points/{cp['id']}",
        json={"opted_out": ["sms"], "timezone": "Asia/Shanghai"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["opted_out"] == ["sms"]
    r = await api.client.patch(
        f"/v1/contact-points/{cp['id']}", json={"timezone": "Mars/Olympus"}, headers=h
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "timezone"


async def test_supervisor_assigns_and_agent_lists_own_cases(api: Api) -> None:
    case = (
        await api.client.post("/v1/cases", json=cn_case(), headers=api.auth(Role.SERVICE))
    ).json()
    r = await api.client.put(
        f"/v1/cases/{case['id']}/assignment",
        json={"agent": "agent-1"},
        headers=api.auth(Role.SUPERVISOR),
    )
    assert r.status_code == 200, r.text
    mine = (await api.client.get("/v1/me/cases", headers=api.auth(Role.AGENT))).json()
    assert [c["id"] for c in mine["items"]] == [case["id"]]


async def test_a_currency_not_in_iso_4217_is_422_in_create_patch_and_import(api: Api) -> None:
    h = api.auth(Role.SERVICE)  # the book's money and currency are the service's to change
    r = await api.client.post("/v1/cases", json=cn_case(currency="ZZZ"), headers=h)
    assert r.status_code == 422, r.text
    [field] = r.json()["error"]["fields"]
    assert field["field"] == "currency" and "ISO 4217" in field["reason"]
    case = (await api.client.post("/v1/cases", json=cn_case(), headers=h)).json()
    r = await api.client.patch(f"/v1/cases/{case['id']}", json={"currency": "ZZZ"}, headers=h)
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["currency"]
    r = await api.client.patch(f"/v1/cases/{case['id']}", json={"currency": "HKD"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["currency"] == "HKD"
    r = await api.client.post(
        "/v1/imports",
        content=json.dumps(cn_case("CN-9", currency="ZZZ")).encode() + b"\n",
        headers={**api.auth(Role.SUPERVISOR), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(1, "currency")]
