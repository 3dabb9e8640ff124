from __future__ import annotations

import json
from pathlib import Path

from dialer.core.auth import Role
from tests.dialer.factories import cn_case, us_case
from tests.dialer.support import Api

EXAMPLE = Path(__file__).parents[3] / "examples" / "portfolio.csv"
HEADER = (
    "portfolio,external_ref,amount,currency,due_date,party_ref,party_role,party_name,kind,value\n"
)


def ndjson(*docs: dict[str, object]) -> bytes:
    return "".join(json.dumps(d) + "\n" for d in docs).encode()


async def _count(api: Api, **params: str) -> int:
    total, cursor = 0, None
    while True:
        page = (
            await api.client.get(
                "/v1/cases",
                params={**params, "limit": 500, **({"cursor": cursor} if cursor else {})},
                headers=api.auth(Role.SUPERVISOR),
            )
        ).json()
        total += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return total


async def test_jsonl_import_reports_bad_lines_and_keeps_good_ones(api: Api) -> None:
    bad_phone = cn_case("CN-2")
    bad_phone["parties"][0]["contact_points"][0]["value"] = "123"
    body = ndjson(cn_case("CN-1"), bad_phone) + b"{not json\n" + ndjson(us_case("US-1"))
    r = await api.client.post(
        "/v1/imports",
        content=body,
        headers={**api.auth(Role.SUPERVISOR), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["cases_created"], report["cases_updated"], report["rejected"]) == (2, 0, 2)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (2, "parties[0].contact_points[0].value"),
        (3, None),
    ]
    assert await _count(api) == 2


async def test_reimporting_the_same_file_duplicates_nothing(api: Api) -> None:
    h = {**api.auth(Role.SERVICE), "Content-Type": "text/csv"}
    data = EXAMPLE.read_bytes()
    first = (await api.client.post("/v1/imports", content=data, headers=h)).json()
    assert first["errors"] == []
    assert first["cases_created"] == 200
    second = (await api.client.post("/v1/imports", content=data, headers=h)).json()
    assert (second["cases_created"], second["cases_updated"]) == (0, 200)
    assert await _count(api) == 200
    assert await _count(api, portfolio="b2b") == 60
    one = (
        await api.client.get(
            "/v1/cases", params={"portfolio": "b2b", "limit": 1}, headers=api.auth(Role.AGENT)
        )
    ).json()["items"][0]
    case = (await api.client.get(f"/v1/cases/{one['id']}", headers=api.auth(Role.AGENT))).json()
    finance = next(p for p in case["parties"] if p["key"] == "finance")
    assert [cp["kind"] for cp in finance["contact_points"]] == ["email", "phone"]
    assert finance["title"]


async def test_csv_bad_row_names_its_line_and_column(api: Api) -> None:
    body = (
        HEADER
        + "cn-loans,A-1,100.00,CNY,2026-11-01,debtor,debtor,Wang,phone,13800138000\n"
        + "cn-loans,A-1,100.00,CNY,2026-11-01,debtor,debtor,Wang,phone,999\n"
        + "cn-loans,A-2,abc,CNY,2026-11-01,debtor,debtor,Li,phone,13900139000\n"
        + "cn-loans,A-3,100.00,CNY,2026-11-01,debtor,debtor,Zhou,phone,13700137000\n"
    )
    r = await api.client.post(
        "/v1/imports",
        content=body.encode(),
        headers={**api.auth(Role.SUPERVISOR), "Content-Type": "text/csv"},
    )
    report = r.json()
    assert report["cases_created"] == 1
    assert [(e["line"], e["field"], e["external_ref"]) for e in report["errors"]] == [
        (3, "parties[0].contact_points[1].value", "A-1"),
        (4, "amount", "A-2"),
    ]


async def test_multipart_upload_and_default_portfolio(api: Api) -> None:
    body = (
        HEADER.replace("portfolio,", "", 1)
        + "B-1,5.00,USD,2026-11-01,d,debtor,Sam,phone,2125550142\n"
    )
    body = "\n".join(line.split(",", 0)[0] for line in body.splitlines()) + "\n"
    r = await api.client.post(
        "/v1/imports",
        params={"portfolio": "us-loans"},
        files={"file": ("cases.csv", body.encode(), "text/csv")},
        headers=api.auth(Role.SUPERVISOR),
    )
    assert r.status_code == 200, r.text
    assert r.json()["cases_created"] == 1


async def test_unknown_portfolio_row_is_rejected(api: Api) -> None:
    r = await api.client.post(
        "/v1/imports",
        content=ndjson(cn_case("X", portfolio=None)),
        headers={**api.auth(Role.SUPERVISOR), "Content-Type": "application/x-ndjson"},
    )
    assert r.json()["errors"][0]["field"] == "portfolio"


async def test_oversized_upload_is_413(api: Api) -> None:
    r = await api.client.post(
        "/v1/imports",
        content=b"x" * (api.settings.max_upload_bytes + 1),
        headers={**api.auth(Role.SUPERVISOR), "Content-Type": "text/csv"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_unknown_content_type_is_415(api: Api) -> None:
    r = await api.client.post(
        "/v1/imports",
        content=b"<xml/>",
        headers={**api.auth(Role.SUPERVISOR), "Content-Type": "application/xml"},
    )
    assert r.status_code == 415
