"""A file an import cannot read on (an unbalanced quote, a field over the CSV limit) is a
422 naming the line, saying how many cases the batches before it committed; the fixed file
imported again completes the import without duplicating them. A JSON line nested 100k
deep is one rejected line, not a 500."""

from __future__ import annotations

import json

import pytest

from dialer.core.auth import Role
from tests.dialer.factories import cn_case
from tests.dialer.support import Api

HEADER = "portfolio,external_ref,amount,currency,due_date,party_role,party_name,kind,value\n"


def _row(i: int, name: str | None = None) -> str:
    name = name or f"Debtor {i}"
    return f"cn-loans,R-{i},100.00,CNY,2026-11-01,debtor,{name},phone,1380013800{i % 10}\n"


async def _cases(api: Api) -> list[str]:
    r = await api.client.get("/v1/cases?limit=500", headers=api.auth(Role.SUPERVISOR))
    return sorted(c["external_ref"] for c in r.json()["items"])


async def _import(api: Api, body: str) -> dict[str, object]:
    h = {**api.auth(Role.SUPERVISOR), "Content-Type": "text/csv"}
    r = await api.client.post("/v1/imports", content=body.encode(), headers=h)
    assert r.status_code in (200, 422), r.text
    return {"status": r.status_code, **r.json()}


@pytest.mark.parametrize(
    "bad",
    [
        'cn-loans,R-6,100.00,CNY,2026-11-01,debtor,"Debtor 6,phone,13800138006\n',  # never closed
        _row(6, "x" * 140_000),  # a field over the csv module's 128 KB limit
    ],
    ids=["unbalanced-quote", "field-over-128KB"],
)
async def test_an_unreadable_line_says_what_was_committed_and_a_rerun_completes(
    api: Api, bad: str
) -> None:
    api.app.state.settings = api.settings.model_copy(update={"import_batch_size": 2})
    before = "".join(_row(i) for i in range(1, 6))  # lines 2-6
    after = "".join(_row(i) for i in range(7, 10))
    report = await _import(api, HEADER + before + bad + after)

    assert report["status"] == 422
    error = report["error"]
    assert isinstance(error, dict)
    assert error["line"] == 7
    assert error["fields"][0]["field"] == "file"
    assert error["fields"][0]["reason"].startswith("line 7: not CSV")
    committed = await _cases(api)
    # batches of 2: R-1..R-4 committed; R-5 was still being gathered and is not written
    assert committed == ["R-1", "R-2", "R-3", "R-4"]
    assert error["cases_committed"] == len(committed)
    assert f"Cases imported and committed before it: {len(committed)};" in error["message"]

    fixed = await _import(api, HEADER + before + _row(6) + after)
    assert fixed["status"] == 200, fixed
    assert (fixed["cases_created"], fixed["cases_updated"]) == (5, 4)
    assert await _cases(api) == [f"R-{i}" for i in range(1, 10)]
    again = await _import(api, HEADER + before + _row(6) + after)
    assert (again["cases_created"], again["cases_updated"]) == (0, 9)
    assert await _cases(api) == [f"R-{i}" for i in range(1, 10)]


async def test_a_json_line_nested_100k_deep_is_one_rejected_line(api: Api) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    body = json.dumps(cn_case("J-1")) + "\n" + deep + "\n" + json.dumps(cn_case("J-2")) + "\n"
    h = {**api.auth(Role.SUPERVISOR), "Content-Type": "application/x-ndjson"}
    r = await api.client.post("/v1/imports", content=body.encode(), headers=h)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["cases_created"] == 2
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(2, None)]
    assert "nested too deeply" in report["errors"][0]["reason"]


@pytest.mark.parametrize("body", ["", "just some text\n", "[]", "external_ref,amount\nR-1,1\n"])
async def test_a_file_without_the_required_columns_is_refused_whole(api: Api, body: str) -> None:
    """Not one row of it can be read: a 422 naming line 1, not a 200 that imported nothing."""
    h = {**api.auth(Role.SUPERVISOR), "Content-Type": "text/csv"}
    r = await api.client.post("/v1/imports", content=body.encode(), headers=h)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["line"], error["cases_committed"]) == (1, 0)
    assert "missing columns" in error["fields"][0]["reason"]


async def test_a_form_upload_without_its_file_names_the_field(api: Api) -> None:
    r = await api.client.post(
        "/v1/imports", files={"other": ("x.csv", b"a,b\n")}, headers=api.auth(Role.SUPERVISOR)
    )
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["file"]


async def test_a_nul_character_in_an_import_rejects_that_case_naming_line_and_field(
    api: Api,
) -> None:
    """PostgreSQL cannot store it: the case is reported, the others are imported."""
    bad = cn_case("J-2")
    bad["parties"][1]["name"] = "Li\x00Na"
    body = "".join(json.dumps(d) + "\n" for d in (cn_case("J-1"), bad, cn_case("J-3")))
    h = {**api.auth(Role.SUPERVISOR), "Content-Type": "application/x-ndjson"}
    r = await api.client.post("/v1/imports", content=body.encode(), headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["cases_created"] == 2
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(2, "parties[1].name")]

    csv_body = HEADER + _row(1) + _row(2, "Nul\x00Name") + _row(3)
    report = await _import(api, csv_body)
    assert report["status"] == 200
    # (the party's ref is made of its role and name here, and is the first field read)
    [error] = report["errors"]
    assert error["line"] == 3 and error["field"].startswith("parties[0].")
    assert await _cases(api) == ["J-1", "J-3", "R-1", "R-3"]
