"""The browser desk's voice: a Twilio Voice SDK access token for the agent's own client
identity (their `client:<identity>` endpoint, the one bridged calls ring), so the desk
page can register with Twilio and take the call in the browser."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.voice_token import voice_access_token
from dialer.core.auth import Principal
from dialer.core.errors import ConflictError, NotConfiguredError
from dialer.core.settings import Settings
from dialer.domain.agents import EndpointKind, parse_endpoint
from dialer.services import agents


def missing_settings(settings: Settings) -> list[str]:
    """The settings a voice token needs that this deployment has not set."""
    needed = {
        "DIALER_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "DIALER_TWILIO_API_KEY_SID": settings.twilio_api_key_sid,
        "DIALER_TWILIO_API_KEY_SECRET": settings.twilio_api_key_secret.get_secret_value(),
        "DIALER_TWILIO_TWIML_APP_SID": settings.twilio_twiml_app_sid,
    }
    return [name for name, value in needed.items() if not value]


async def issue(
    session: AsyncSession, who: Principal, settings: Settings, now: datetime
) -> dict[str, Any]:
    """A token for this agent's client identity, valid for DIALER_VOICE_TOKEN_TTL_SECONDS.
    503 naming the unset settings; 409 when the agent's endpoint is not a browser client."""
    missing = missing_settings(settings)
    if missing:
        raise NotConfiguredError(
            f"no voice token: set {', '.join(missing)} (a Twilio API key and TwiML app)",
            extra={"missing_settings": missing},
        )
    row = await agents.me(session, who, now)
    await session.commit()
    endpoint = parse_endpoint(row.endpoint) if row.endpoint else None
    if endpoint is None or endpoint.kind is not EndpointKind.CLIENT:
        raise ConflictError(
            "a voice token is for a browser client: set the endpoint to client:<identity>"
            " first (PUT /v1/agents/me/endpoint)"
        )
    ttl = settings.voice_token_ttl_seconds
    token = voice_access_token(
        account_sid=settings.twilio_account_sid,
        api_key_sid=settings.twilio_api_key_sid,
        api_key_secret=settings.twilio_api_key_secret.get_secret_value(),
        twiml_app_sid=settings.twilio_twiml_app_sid,
        identity=endpoint.address,
        issued_at=now,
        ttl_seconds=ttl,
    )
    return {
        "token": token,
        "identity": endpoint.address,
        "expires_at": now.replace(microsecond=0) + timedelta(seconds=ttl),
    }
