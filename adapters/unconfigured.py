"""The telephony of a service with no provider configured: it dials nobody, and says so.

`dialer serve` and `dialer worker` fall back to it when neither Twilio nor the simulator
is configured. Every call and text raises `NotConfiguredError`, so the worker ends the
attempt at once (`not_sent`, error code `no_telephony`) instead of leaving it "in progress"
with nobody to call back; the campaign's progress counts them and says why."""

from __future__ import annotations

from datetime import datetime

from adapters.errors import NotConfiguredError, NotFoundError
from adapters.ports import CallInfo, CallRequest, MessageInfo, ProviderRef, SmsRequest, Telephony

WHY = (
    "no telephony configured: this service dials nobody "
    "(set DIALER_TWILIO_ACCOUNT_SID and DIALER_TWILIO_AUTH_TOKEN for Twilio, "
    "or DIALER_TELEPHONY=simulator with a DIALER_TWILIO_AUTH_TOKEN to simulate)"
)


class UnconfiguredTelephony(Telephony):
    """Refuses every call and text with `NotConfiguredError`; knows of no call or message."""

    async def place_call(self, request: CallRequest) -> ProviderRef:
        raise NotConfiguredError(WHY)

    async def send_sms(self, request: SmsRequest) -> ProviderRef:
        raise NotConfiguredError(WHY)

    async def fetch_call(self, sid: str) -> CallInfo:
        raise NotFoundError(f"no call {sid}: {WHY}")

    async def fetch_message(self, sid: str) -> MessageInfo:
        raise NotFoundError(f"no message {sid}: {WHY}")

    async def find_calls(self, to: str, after: datetime) -> list[CallInfo]:
        return []

    async def find_messages(self, to: str, after: datetime) -> list[MessageInfo]:
        return []

    async def update_call(self, sid: str, twiml_url: str) -> None:
        raise NotConfiguredError(WHY)
