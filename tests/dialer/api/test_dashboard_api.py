"""The dashboard's case view: a case by id or external reference, its decision with
reasons, contact points masked; unknown and ambiguous references are clear 4xx."""

from __future__ import annotations

import base64
import hashlib
from importlib.resources import files

import pytest

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


@pytest.mark.parametrize(
    ("path", "name"), [("/dashboard", "dashboard.html"), ("/desk", "desk.html")]
)
async def test_the_pages_that_take_a_key_send_security_headers_on_get_and_head(
    api: Api, path: str, name: str
) -> None:
    html = files("dialer").joinpath(f"static/{name}").read_text(encoding="utf-8")
    script = html.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    for method in ("GET", "HEAD"):
        r = await api.client.request(method, path)
        assert r.status_code == 200, (method, r.text)
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        directives = (
            d.strip().partition(" ") for d in r.headers["content-security-policy"].split(";")
        )
        policy = {name: value for name, _, value in directives}
        assert policy["default-src"] == "'none'"
        assert policy["frame-ancestors"] == "'none'"
        assert policy["script-src"] == f"'sha256-{digest}'"  # the page's own script, no other
        assert "unsafe-inline" not in policy["style-src"]
        assert policy["connect-src"] == "'self'"
    assert r.content == b""  # HEAD: the headers alone
