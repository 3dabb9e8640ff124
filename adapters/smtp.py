"""Email through SMTP (aiosmtplib), for the B2B ladder's "email + phone" cadence.

We generate the Message-ID ourselves, so the attempt knows its handle before the server
answers and replies (In-Reply-To) can be matched to it. Failure meanings:
- cannot connect, or a 4xx reply before the message was accepted: `TransientError`;
- 5xx for a recipient or for the message: `PermanentError` (a 550 unknown mailbox is
  `invalid_number`'s counterpart for an address: the contact point is invalid);
- the connection lost or timed out after the data was sent: `AmbiguousError`.
"""

from __future__ import annotations

import email.utils
import uuid
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage

import aiosmtplib

from adapters.errors import AmbiguousError, PermanentError, PermanentErrorKind, TransientError
from adapters.ports import EmailMessage, Mailer, ProviderRef


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    hostname: str
    port: int
    sender: str  # "Receivables <ar@example.com>"
    username: str | None = None
    password: str | None = None
    use_tls: bool = False  # implicit TLS (465)
    start_tls: bool | None = None  # None: STARTTLS if the server offers it
    timeout: float = 30.0
    message_id_domain: str | None = None  # default: the sender's domain


class SmtpMailer(Mailer):
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        _, address = email.utils.parseaddr(settings.sender)
        self._domain = settings.message_id_domain or address.rpartition("@")[2] or "localhost"

    def build(self, message: EmailMessage) -> MimeMessage:
        mime = MimeMessage()
        mime["From"] = self.settings.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        mime["Message-ID"] = f"<{message.attempt_id}.{uuid.uuid4().hex}@{self._domain}>"
        if message.reply_to:
            mime["Reply-To"] = message.reply_to
        for name, value in message.headers.items():
            mime[name] = value
        mime.set_content(message.text)
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html")
        return mime

    async def send(self, message: EmailMessage) -> ProviderRef:
        mime = self.build(message)
        s = self.settings
        try:
            await aiosmtplib.send(
                mime,
                hostname=s.hostname,
                port=s.port,
                username=s.username,
                password=s.password,
                use_tls=s.use_tls,
                start_tls=s.start_tls,
                timeout=s.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if codes and all(code >= 500 for code in codes):
                raise PermanentError(
                    f"recipient refused: {exc}", kind=PermanentErrorKind.INVALID_NUMBER,
                    code=codes[0],
                ) from exc  # fmt: skip
            raise TransientError(f"recipient deferred: {exc}") from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise PermanentError(str(exc), kind=PermanentErrorKind.AUTH, code=exc.code) from exc
        except aiosmtplib.SMTPConnectError as exc:  # includes connect timeouts
            raise TransientError(f"SMTP server not reached: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            # A refusal of the sender or of the message itself: it was not accepted.
            kind = PermanentErrorKind.OTHER
            if exc.code >= 500:
                raise PermanentError(str(exc), kind=kind, code=exc.code) from exc
            raise TransientError(str(exc)) from exc
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
            raise AmbiguousError(f"SMTP connection lost mid-send: {exc}") from exc
        except aiosmtplib.SMTPException as exc:
            raise TransientError(str(exc)) from exc
        return ProviderRef("smtp", str(mime["Message-ID"]), "accepted")
