"""Every error has the documented shape, the unexpected ones too (with a request id that
the log line carries); the OpenAPI document declares every constraint the server enforces."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from dialer.api.app import create_app
from dialer.api.deps import now_dependency
from dialer.core.auth import Role
from dialer.core.settings import Settings
from strategy.guardrails import PROFILES
from tests.dialer.factories import cn_case
from tests.dialer.support import Api


def _boom() -> Any:
    raise RuntimeError("the clock fell over")


async def test_an_unexpected_error_is_a_500_in_the_error_shape_with_its_request_id(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    case = (await api.client.post("/v1/cases", json=cn_case(), headers=api.auth(Role.ADMIN))).json()
    api.app.dependency_overrides[now_dependency] = _boom
    with caplog.at_level(logging.ERROR, logger="dialer.api.unexpected"):
        r = await api.client.get(f"/v1/cases/{case['id']}/decision", headers=api.auth(Role.ADMIN))
    assert r.status_code == 500, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error["code"] == "internal_error"
    assert error["fields"] == []
    request_id = error["request_id"]
    assert request_id and request_id in error["message"]
    assert "clock fell over" not in r.text  # the details stay in the log
    [record] = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert record.exc_info and "clock fell over" in str(record.exc_info[1])
    assert record.path == f"/v1/cases/{case['id']}/decision"  # type: ignore[attr-defined]


async def test_a_database_that_cannot_be_reached_is_a_503_in_the_error_shape(api: Api) -> None:
    def unreachable() -> Any:
        raise ConnectionRefusedError("connection refused")

    api.app.dependency_overrides[now_dependency] = unreachable
    r = await api.client.get(
        "/v1/cases/00000000-0000-0000-0000-000000000000/decision", headers=api.auth(Role.ADMIN)
    )
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert (error["code"], error["fields"]) == ("unavailable", [])
    assert error["request_id"] in error["message"]


def _schema(tmp_path: Path) -> dict[str, Any]:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    return app.openapi()


def _body(doc: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["components"]["schemas"][name]
    return schema


def _variants(prop: dict[str, Any]) -> list[dict[str, Any]]:
    return list(prop.get("anyOf", [prop]))


def test_the_openapi_document_declares_the_constraints_the_server_enforces(
    tmp_path: Path,
) -> None:
    """schemathesis found requests the schema called valid rejected, and invalid ones
    accepted: each constraint below is enforced by the server and was not declared."""
    doc = _schema(tmp_path)
    campaign = _body(doc, "CampaignIn")["properties"]
    assert campaign["window"]["pattern"].startswith("^([01]\\d|2[0-3])")
    assert campaign["pacing_cps"]["minimum"] == 0.01
    assert campaign["max_in_progress"]["anyOf"][0]["maximum"] == 100_000

    portfolio = _body(doc, "PortfolioIn")["properties"]
    assert sorted(portfolio["profile"]["enum"]) == sorted(PROFILES)
    assert "Asia/Shanghai" in portfolio["timezone"]["enum"]
    assert "Mars/Olympus" not in portfolio["timezone"]["enum"]
    assert sorted(_body(doc, "PortfolioProfileIn")["properties"]["profile"]["enum"]) == sorted(
        PROFILES
    )
    party_zone = _variants(_body(doc, "PartyIn")["properties"]["timezone"])
    assert any("Asia/Shanghai" in v.get("enum", ()) for v in party_zone)

    amount = _variants(_body(doc, "CaseIn")["properties"]["amount"])
    number = next(v for v in amount if v.get("type") == "number")
    string = next(v for v in amount if v.get("type") == "string")
    assert number["minimum"] == 0 and number["maximum"] < 10**16 and number["multipleOf"] == 0.01
    assert string["pattern"] == "^\\d{1,16}(\\.\\d{1,2})?$"
    promise = _variants(_body(doc, "OutcomeIn")["properties"]["promise_amount"])
    assert any(v.get("exclusiveMinimum") == 0 for v in promise)
    positive = next(v for v in promise if v.get("type") == "string")["pattern"]
    assert re.match(positive, "0.01") and re.match(positive, "12.50")
    assert not re.match(positive, "0") and not re.match(positive, "0.00")

    at = _variants(_body(doc, "PaymentIn")["properties"]["at"])[0]
    assert at["format"] == "date-time" and at["pattern"] == "^(19|20)\\d\\d-"
    due = _body(doc, "CaseIn")["properties"]["due_date"]
    assert due["format"] == "date" and due["pattern"] == "^(19|20)\\d\\d-"

    decision = doc["paths"]["/v1/cases/{case_id}/decision"]["get"]
    at_query = next(p for p in decision["parameters"] if p["name"] == "at")["schema"]
    assert _variants(at_query)[0]["pattern"] == "^(19|20)\\d\\d-"
    assert decision["responses"]["500"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
