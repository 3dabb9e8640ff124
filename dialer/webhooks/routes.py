"""Twilio's webhooks, under /v1/twilio (the paths `adapters.twilio.WebhookPaths` builds).

They authenticate by `X-Twilio-Signature`, not by API key: a missing or bad signature is
a 403 that changes nothing. Each handler commits its event before answering 2xx (Twilio
retries what it does not see answered). The routes hold no business logic: they parse,
authenticate, and hand the form to `dialer.services.callbacks` / `voice_flow`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from dialer.api.deps import SessionDep, get_now, get_settings
from dialer.services import callbacks, voice_flow
from dialer.webhooks.forms import verified_form

router = APIRouter(prefix="/twilio", tags=["twilio webhooks"])
SIGNED = {"description": "authenticated by X-Twilio-Signature (403 otherwise)"}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def _xml(body: str) -> Response:
    return Response(body, media_type="text/xml")


@router.post("/voice/status", status_code=204, responses={403: SIGNED})
async def voice_status(request: Request, session: SessionDep) -> Response:
    """Call progress: initiated, ringing, answered, completed (with CallDuration)."""
    form = await verified_form(request, get_settings(request))
    await callbacks.record_call_status(session, form, get_now(request))
    return Response(status_code=204)


@router.post("/voice/amd", status_code=204, responses={403: SIGNED})
async def voice_amd(request: Request, session: SessionDep) -> Response:
    """Asynchronous answering-machine detection (`AnsweredBy`)."""
    form = await verified_form(request, get_settings(request))
    await callbacks.record_amd(session, form, get_now(request))
    return Response(status_code=204)


@router.post("/voice/answer", responses={403: SIGNED})
async def voice_answer(request: Request, session: SessionDep) -> Response:
    """The call's first TwiML: the greeting, within the disclosure granted."""
    settings = get_settings(request)
    form = await verified_form(request, settings)
    return _xml(await voice_flow.answer(session, form, settings))


@router.post("/voice/gather", responses={403: SIGNED})
async def voice_gather(request: Request, session: SessionDep) -> Response:
    """A keypress (`Digits`) at the greeting or in the debtor menu."""
    settings = get_settings(request)
    form = await verified_form(request, settings)
    return _xml(await voice_flow.gather(session, form, settings, get_now(request)))


@router.post("/sms/status", status_code=204, responses={403: SIGNED})
async def sms_status(request: Request, session: SessionDep) -> Response:
    """SMS delivery: queued, sent, delivered, undelivered, failed (with ErrorCode)."""
    form = await verified_form(request, get_settings(request))
    await callbacks.record_sms_status(session, form, get_now(request))
    return Response(status_code=204)


@router.post("/sms/inbound", responses={403: SIGNED})
async def sms_inbound(request: Request, session: SessionDep) -> Response:
    """A reply: STOP and the other opt-out words (退订, TD), START, HELP, or text kept on
    the case. Twilio answers its own keywords, so the reply is empty TwiML."""
    form = await verified_form(request, get_settings(request))
    await callbacks.record_inbound_sms(session, form, get_now(request))
    return _xml(EMPTY_TWIML)
