"""SMS callbacks and replies, signed like Twilio signs them: delivery in either order,
failures with their error code, 21610 and every opt-out word (STOP, 退订, TD ...) blocking
SMS on that number at once, START lifting it, other text kept on the case."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dialer.core.auth import Role
from tests.dialer.factories import cn_case
from tests.dialer.support import Api
from tests.dialer.twilio_forms import Hooks, configure, inbound, sms_status

STATUS = "/v1/twilio/sms/status"
INBOUND = "/v1/twilio/sms/inbound"
SID = "SM" + "3" * 32
DEBTOR = "+8613800138000"  # cn_case's debtor phone, normalised


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


async def test_sent_then_delivered_in_either_order_ends_delivered(hooks: Hooks) -> None:
    case = await hooks.case()
    first = await hooks.add_attempt(case, channel="sms", sid=SID)
    second = await hooks.add_attempt(case, channel="sms", sid="SM" + "4" * 32)
    for status in ("sent", "delivered"):
        assert (
            await hooks.post(STATUS, sms_status(SID, status), attempt=first.id)
        ).status_code == 204
    for status in ("delivered", "sent", "delivered"):
        await hooks.post(STATUS, sms_status("SM" + "4" * 32, status), attempt=second.id)
    for attempt in (first, second):
        row = await hooks.attempt(attempt.id)
        assert (row.state, row.result) == ("completed", "delivered")
    assert len(await hooks.events()) == 4, "the repeated `delivered` is absorbed"


async def test_undelivered_keeps_its_error_code(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), channel="sms", sid=SID)
    await hooks.post(STATUS, sms_status(SID, "undelivered", error="30003"), attempt=attempt.id)
    row = await hooks.attempt(attempt.id)
    assert (row.state, row.result, row.error_code) == ("failed", "failed", "30003")
    assert (await hooks.point(attempt.contact_point_id)).opted_out == []


async def test_error_21610_opts_the_number_out_of_sms(hooks: Hooks) -> None:
    attempt = await hooks.add_attempt(await hooks.case(), channel="sms", sid=SID)
    await hooks.post(STATUS, sms_status(SID, "failed", error="21610"), attempt=attempt.id)
    assert (await hooks.point(attempt.contact_point_id)).opted_out == ["sms"]


async def test_unknown_message_is_kept_for_reconciliation(hooks: Hooks) -> None:
    r = await hooks.post(STATUS, sms_status("SM" + "0" * 32, "delivered"))
    assert r.status_code == 204
    assert [e.status for e in await hooks.events()] == ["unmatched"]


async def _two_cases_sharing_the_number(hooks: Hooks) -> list[dict[str, Any]]:
    return [await hooks.case(cn_case("CN-1")), await hooks.case(cn_case("CN-2"))]


def _debtor_point(case: dict[str, Any]) -> str:
    return str(case["parties"][0]["contact_points"][0]["id"])


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop. ", "UNSUBSCRIBE", "退订", "TD", "revoke"])
async def test_opt_out_words_block_sms_on_every_case_with_the_number(
    hooks: Hooks, word: str
) -> None:
    cases = await _two_cases_sharing_the_number(hooks)
    r = await hooks.post(INBOUND, inbound("SM" + "1" * 32, DEBTOR, word))
    assert r.status_code == 200 and "<Response" in r.text
    for case in cases:
        point = await hooks.point(_uuid(_debtor_point(case)))
        assert point.opted_out == ["sms"]
        other = await hooks.point(_uuid(case["parties"][0]["contact_points"][1]["id"]))
        assert other.opted_out == [], "only the number that replied"


async def test_start_opts_back_in_and_help_changes_nothing(hooks: Hooks) -> None:
    (case,) = [await hooks.case()]
    point = _uuid(_debtor_point(case))
    await hooks.post(INBOUND, inbound("SM" + "1" * 32, DEBTOR, "STOP"))
    await hooks.post(INBOUND, inbound("SM" + "2" * 32, DEBTOR, "HELP"))
    assert (await hooks.point(point)).opted_out == ["sms"]
    await hooks.post(INBOUND, inbound("SM" + "3" * 32, DEBTOR, "START"))
    assert (await hooks.point(point)).opted_out == []
    timeline = (
        await hooks.client.get(
            f"/v1/cases/{case['id']}/timeline", headers=hooks.api.auth(Role.AGENT)
        )
    ).json()
    kinds = [e["message_kind"] for e in timeline["entries"] if e["kind"] == "inbound_message"]
    assert kinds == ["stop", "help", "start"]


async def test_other_text_is_kept_on_the_case_once(hooks: Hooks) -> None:
    case = await hooks.case()
    for _ in range(2):  # Twilio retried the webhook
        r = await hooks.post(INBOUND, inbound("SM" + "5" * 32, DEBTOR, "I will pay on Friday"))
        assert r.status_code == 200
    timeline = (
        await hooks.client.get(
            f"/v1/cases/{case['id']}/timeline", headers=hooks.api.auth(Role.AGENT)
        )
    ).json()
    messages = [e for e in timeline["entries"] if e["kind"] == "inbound_message"]
    assert [(m["message_kind"], m["body"]) for m in messages] == [("text", "I will pay on Friday")]
    assert (await hooks.point(_uuid(_debtor_point(case)))).opted_out == []


async def test_a_reply_from_an_unknown_number_is_kept(hooks: Hooks) -> None:
    r = await hooks.post(INBOUND, inbound("SM" + "6" * 32, "+15005550006", "who is this"))
    assert r.status_code == 200
    assert [e.kind for e in await hooks.events()] == ["sms_inbound"]


async def test_stop_after_planning_refuses_the_queued_sms(hooks: Hooks) -> None:
    """Invariant 7 at the decision the worker takes again before it sends."""
    h = hooks.api.auth(Role.SUPERVISOR)
    r = await hooks.client.post(
        "/v1/strategies/from-preset", json={"portfolio": "cn-loans", "preset": "consumer-loan"},
        headers=h,
    )  # fmt: skip
    await hooks.client.post(f"/v1/strategies/{r.json()['id']}/activate", headers=h)
    case = await hooks.case()
    point = _debtor_point(case)
    at = {"at": "2026-12-01T10:00:00+08:00"}
    url = f"/v1/cases/{case['id']}/decision"
    before = (await hooks.client.get(url, params=at, headers=hooks.api.auth(Role.AGENT))).json()
    await hooks.post(INBOUND, inbound("SM" + "1" * 32, DEBTOR, "退订"))
    after = (await hooks.client.get(url, params=at, headers=hooks.api.auth(Role.AGENT))).json()
    assert not [
        a for a in after["allowed"]
        if a["candidate"]["contact_point_id"] == point and a["candidate"]["channel"] == "sms"
    ]  # fmt: skip
    refused = [
        x for x in after["refused"]
        if x["candidate"]["contact_point_id"] == point and x["candidate"]["channel"] == "sms"
    ]  # fmt: skip
    assert refused and "optout.channel" in [r["rule"] for r in refused[0]["reasons"]]
    assert before["case_id"] == after["case_id"]


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)
