"""Twilio-shaped webhook bodies, signed with twilio-python's own `RequestValidator` (so the
tests do not trust the code they test), and a seeded case with an attempt to call back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from dialer.core.auth import Role
from dialer.db.models import AttemptRow, ContactPointRow, WebhookEventRow
from tests.dialer.factories import cn_case, us_case
from tests.dialer.support import NOW, Api

TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT = "AC" + "a" * 32
BASE = "https://dialer.example.com"
OUR_NUMBER = "+14155550100"
Fields = Sequence[tuple[str, str]] | dict[str, str]


def signature(url: str, fields: Fields, token: str = TOKEN) -> str:
    pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
    return str(RequestValidator(token).compute_signature(url, ImmutableMultiDict(pairs)))


@dataclass
class Hooks:
    api: Api

    @property
    def client(self) -> httpx.AsyncClient:
        return self.api.client

    @property
    def maker(self) -> async_sessionmaker[AsyncSession]:
        maker: async_sessionmaker[AsyncSession] = self.api.app.state.sessionmaker
        return maker

    async def post(
        self,
        path: str,
        fields: Fields,
        *,
        attempt: uuid.UUID | str | None = None,
        query: dict[str, str] | None = None,
        token: str = TOKEN,
        sign_url: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        params = dict(query or {})
        if attempt is not None:
            params = {"attempt": str(attempt), **params}
        path_q = f"{path}?{urlencode(params)}" if params else path
        url = sign_url or f"{BASE}{path_q}"
        pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
        sent = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Twilio-Signature": signature(url, pairs, token),
            **(headers or {}),
        }
        return await self.client.post(path_q, content=urlencode(pairs), headers=sent)

    async def attempt(self, attempt_id: uuid.UUID) -> AttemptRow:
        async with self.maker() as session:
            row = await session.get(AttemptRow, attempt_id)
            assert row is not None
            return row

    async def point(self, cp_id: uuid.UUID) -> ContactPointRow:
        async with self.maker() as session:
            row = await session.get(ContactPointRow, cp_id)
            assert row is not None
            return row

    async def events(self) -> list[WebhookEventRow]:
        async with self.maker() as session:
            return list(await session.scalars(select(WebhookEventRow).order_by(WebhookEventRow.id)))

    async def case(self, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.client.post(
            "/v1/cases", json=doc or cn_case(), headers=self.api.auth(Role.SERVICE)
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def us_case(self) -> dict[str, Any]:
        return await self.case(us_case())

    async def add_attempt(
        self,
        case: dict[str, Any],
        *,
        channel: str = "voice",
        state: str = "sent",
        sid: str | None = None,
        party: int = 0,
        point: int = 0,
        disclosure: str = "full",
        at: datetime = NOW,
    ) -> AttemptRow:
        p = case["parties"][party]
        row = AttemptRow(
            id=uuid.uuid4(),
            case_id=uuid.UUID(case["id"]),
            party_id=uuid.UUID(p["id"]),
            contact_point_id=uuid.UUID(p["contact_points"][point]["id"]),
            channel=channel,
            state=state,
            result="pending",
            provider_sid=sid,
            at=at,
            disclosure=disclosure,
            voicemail_disclosure="identity",
        )
        async with self.maker() as session:
            session.add(row)
            await session.commit()
        return row


def configure(api: Api) -> Hooks:
    """The app of `api`, configured for Twilio: our token and public base URL."""
    api.app.state.settings = api.settings.model_copy(
        update={
            "twilio_auth_token": SecretStr(TOKEN),
            "twilio_account_sid": ACCOUNT,
            "public_base_url": BASE,
            "callback_number": "+14155550100",
            "default_team_number": "+14155550111",
        }
    )
    return Hooks(api)


def call_status(
    sid: str, status: str, seq: int, *, to: str = "+8613800138000", **extra: str
) -> dict[str, str]:
    fields = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Called": to,
        "Caller": OUR_NUMBER,
        "CallbackSource": "call-progress-events",
        "Direction": "outbound-api",
        "From": OUR_NUMBER,
        "SequenceNumber": str(seq),
        "Timestamp": f"Tue, 01 Dec 2026 02:00:{min(seq, 59):02d} +0000",
        "To": to,
    }
    fields.update(extra)
    return fields


def amd(sid: str, answered_by: str, *, to: str = "+8613800138000") -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "AnsweredBy": answered_by,
        "CallSid": sid,
        "MachineDetectionDuration": "2410",
        "From": OUR_NUMBER,
        "To": to,
    }


def gather(sid: str, digits: str, *, to: str = "+8613800138000") -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "CallSid": sid,
        "CallStatus": "in-progress",
        "Digits": digits,
        "Direction": "outbound-api",
        "FinishedOnKey": "",
        "From": OUR_NUMBER,
        "To": to,
        "msg": "Gather End",
    }


def sms_status(
    sid: str, status: str, *, to: str = "+12125550199", error: str | None = None
) -> dict[str, str]:
    fields = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "From": OUR_NUMBER,
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": to,
    }
    if error is not None:
        fields["ErrorCode"] = error
    return fields


def inbound(sid: str, sender: str, body: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": sender,
        "FromCountry": "US",
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": OUR_NUMBER,
    }
