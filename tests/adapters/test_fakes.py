"""The fakes keep the ports' contracts, so the service's tests can trust them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.errors import AmbiguousError, NotFoundError, PermanentError, PermanentErrorKind
from adapters.fakes import FakeMailer, FakeTelephony
from adapters.ports import CallRequest, EmailMessage, SmsRequest

T0 = datetime(2025, 3, 3, 17, 0, tzinfo=UTC)
CALL = CallRequest("att-1", "+14155550100", "+14155550199")


async def test_fake_telephony_records_calls_and_sms_by_destination() -> None:
    phone = FakeTelephony(now=T0)
    ref = await phone.place_call(CALL)
    await phone.send_sms(SmsRequest("att-2", "+14155550100", "Hi"))
    assert phone.calls["+14155550100"] == [CALL]
    assert [s.body for s in phone.sms["+14155550100"]] == ["Hi"]
    assert (await phone.fetch_call(ref.id)).status == "queued"


async def test_fake_permanent_failure_places_nothing() -> None:
    phone = FakeTelephony(now=T0)
    phone.fail_next(CALL.to, PermanentError("x", kind=PermanentErrorKind.INVALID_NUMBER))
    with pytest.raises(PermanentError):
        await phone.place_call(CALL)
    assert phone.calls[CALL.to] == []


async def test_fake_ambiguous_failure_after_acting_leaves_a_call_the_reconciler_finds() -> None:
    phone = FakeTelephony(now=T0)
    phone.fail_next(CALL.to, AmbiguousError("lost response"), after_acting=True)
    with pytest.raises(AmbiguousError):
        await phone.place_call(CALL)
    [found] = await phone.find_calls(CALL.to, T0)
    assert found.to == CALL.to
    with pytest.raises(NotFoundError):
        await phone.fetch_call("CA-unknown")


async def test_fake_finds_messages_to_a_number_since_an_instant_newest_first() -> None:
    phone = FakeTelephony(now=T0)
    phone.fail_next(CALL.to, AmbiguousError("lost response"), after_acting=True)
    with pytest.raises(AmbiguousError):
        await phone.send_sms(SmsRequest("att-2", CALL.to, "Hi"))
    second = await phone.send_sms(SmsRequest("att-3", CALL.to, "Hi again"))
    found = await phone.find_messages(CALL.to, T0)
    assert len(found) == 2 and found[0].sid == second.id
    assert await phone.find_messages("+14155550111", T0) == []
    assert await phone.find_messages(CALL.to, T0 + timedelta(seconds=1)) == []
    phone.set_message_status(second.id, "delivered")
    assert (await phone.fetch_message(second.id)).status == "delivered"


async def test_fake_mailer_records_by_recipient() -> None:
    mail = FakeMailer()
    ref = await mail.send(EmailMessage("att-3", "a@b.example", "S", "T"))
    assert [m.subject for m in mail.sent["a@b.example"]] == ["S"]
    assert ref.id.startswith("<att-3.")
