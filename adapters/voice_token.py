"""Twilio Voice SDK access tokens for the browser desk: twilio-python's `AccessToken`
with a `VoiceGrant` (incoming calls to the identity, outgoing ones through the TwiML app),
signed with an API key. Only the token's text leaves this module."""

from __future__ import annotations

from datetime import datetime

from twilio.jwt.access_token import AccessToken  # type: ignore[import-untyped]
from twilio.jwt.access_token.grants import VoiceGrant  # type: ignore[import-untyped]


def voice_access_token(
    *,
    account_sid: str,
    api_key_sid: str,
    api_key_secret: str,
    twiml_app_sid: str,
    identity: str,
    issued_at: datetime,
    ttl_seconds: int,
) -> str:
    """A signed JWT letting the Voice SDK register as `identity` (bridged calls ring it)
    from `issued_at` for `ttl_seconds`."""
    not_before = int(issued_at.timestamp())
    token = AccessToken(
        account_sid,
        api_key_sid,
        api_key_secret,
        identity=identity,
        nbf=not_before,
        valid_until=not_before + ttl_seconds,
    )
    token.add_grant(VoiceGrant(incoming_allow=True, outgoing_application_sid=twiml_app_sid))
    return str(token.to_jwt())
