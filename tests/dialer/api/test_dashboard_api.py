"""The dashboard's case view: a case by id or external reference, its decision with
reasons, contact points masked; unknown and ambiguous references are clear 4xx."""

from __future__ import annotations

from dialer.core.auth import Role
from tests.dialer.api.test_decisions_api import _activate
from tests.dialer.factories import cn_case
from tests.dialer.support import Api


async def test_case_view_by_reference_shows_the_decision_with_masked_numbers(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    r = await api.client.post("/v1/cases", json=cn_case("CN-77"), headers=api.auth(Role.SERVICE))
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    for ref in ("CN-77", case_id):
        r = await api.client.get(f"/v1/dashboard/cases/{ref}", headers=api.auth(Role.AGENT))
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["case"]["id"] == case_id and view["case"]["external_ref"] == "CN-77"
        decision = view["decision"]
        direct = await api.client.get(f"/v1/cases/{case_id}/decision", headers=api.auth(Role.AGENT))
        assert [a["candidate"] for a in decision["allowed"]] == [
            a["candidate"] for a in direct.json()["allowed"]
        ]
        assert [[x["rule"] for x in f["reasons"]] for f in decision["refused"]] == [
            [x["rule"] for x in f["reasons"]] for f in direct.json()["refused"]
        ]
        labels = [x["who"] for x in (*decision["allowed"], *decision["refused"])]
        assert labels and all("+86" in w and "*" in w for w in labels)
        for raw in ("13800138000", "13912345678", "13700137000"):
            assert raw not in r.text


async def test_unknown_and_ambiguous_references_are_4xx(api: Api) -> None:
    await _activate(api, "cn-loans", "consumer-loan")
    await _activate(api, "b2b", "b2b-receivables")
    h = api.auth(Role.SERVICE)
    r = await api.client.get("/v1/dashboard/cases/NOPE-1", headers=h)
    assert r.status_code == 404 and "NOPE-1" in r.json()["error"]["message"]
    for portfolio in ("cn-loans", "b2b"):
        doc = cn_case("SAME-1", portfolio=portfolio)
        assert (await api.client.post("/v1/cases", json=doc, headers=h)).status_code == 201
    r = await api.client.get("/v1/dashboard/cases/SAME-1", headers=h)
    assert r.status_code == 409 and "portfolio" in r.json()["error"]["message"]
    r = await api.client.get("/v1/dashboard/cases/SAME-1?portfolio=b2b", headers=h)
    assert r.status_code == 200 and r.json()["case"]["portfolio"] == "b2b"
