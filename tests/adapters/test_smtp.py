"""The SMTP mailer against a local aiosmtpd server on a free port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage as MimeMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from adapters.errors import PermanentError, PermanentErrorKind, TransientError
from adapters.ports import EmailMessage
from adapters.smtp import SmtpMailer, SmtpSettings


class Inbox:
    """An aiosmtpd handler that keeps what it receives and refuses `nobody@`."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], MimeMessage]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, MimeMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def mailer(port: int) -> SmtpMailer:
    return SmtpMailer(
        SmtpSettings(
            hostname="127.0.0.1", port=port, sender="Receivables <ar@acme.example>",
            start_tls=False, timeout=5,
        )
    )  # fmt: skip


REMINDER = EmailMessage(
    attempt_id="att-9",
    to="jing.chen@customer.example",
    subject="Payment reminder: 1,234.50 USD due 1 March 2025",
    text="Dear Ms. Chen,\n\nA friendly reminder ... could you reply?\n",
    html="<p>Dear Ms. Chen,</p><p>A friendly reminder ... could you reply?</p>",
    reply_to="ar+att-9@acme.example",
)


async def test_email_arrives_with_headers_and_our_message_id(inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    ref = await mailer(port).send(REMINDER)

    [(mail_from, rcpt, message)] = handler.messages
    assert (mail_from, rcpt) == ("ar@acme.example", ["jing.chen@customer.example"])
    assert message["From"] == "Receivables <ar@acme.example>"
    assert message["To"] == "jing.chen@customer.example"
    assert message["Subject"] == REMINDER.subject
    assert message["Reply-To"] == "ar+att-9@acme.example"
    assert message["Date"]
    assert (ref.provider, ref.id) == ("smtp", message["Message-ID"])
    assert ref.id.startswith("<att-9.") and ref.id.endswith("@acme.example>")
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "could you reply?" in text.get_content()
    assert html is not None and "<p>Dear Ms. Chen,</p>" in html.get_content()


async def test_plain_text_only_email_has_no_html_part(inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    await mailer(port).send(
        EmailMessage(
            "att-10", "jing.chen@customer.example", "尊敬的陈女士", "尊敬的陈女士：\n\n您好！"
        )
    )
    [(_, _, message)] = handler.messages
    assert not message.is_multipart()
    assert message["Subject"] == "尊敬的陈女士"
    assert message.get_content().startswith("尊敬的陈女士：")


async def test_each_send_gets_a_fresh_message_id(inbox: tuple[Inbox, int]) -> None:
    _, port = inbox
    first = await mailer(port).send(REMINDER)
    second = await mailer(port).send(REMINDER)
    assert first.id != second.id


async def test_refused_mailbox_is_a_permanent_error(inbox: tuple[Inbox, int]) -> None:
    _, port = inbox
    with pytest.raises(PermanentError) as caught:
        await mailer(port).send(EmailMessage("att-11", "nobody@customer.example", "Hi", "Hi"))
    assert (caught.value.kind, caught.value.code) == (PermanentErrorKind.INVALID_NUMBER, 550)


async def test_unreachable_server_is_transient() -> None:
    with pytest.raises(TransientError):
        await mailer(free_port()).send(REMINDER)
