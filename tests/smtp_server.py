"""A real local SMTP server (aiosmtpd) for tests: import the `smtp` fixture into a test module.

Mail leaves through the outbox (kb.mail): transactional mails right after their commit, the
others when a sender runs. Reading `smtp.messages` (or `smtp.to()`) first runs one sender pass,
as `kb mail send` from cron would, then returns everything the server received."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask


class Inbox:
    def __init__(self, deliver: Callable[[], Any] = lambda: None) -> None:
        self.received: list[EmailMessage] = []
        self.deliver = deliver

    @property
    def messages(self) -> list[EmailMessage]:
        """What the server received once the outbox's due mails were sent."""
        self.deliver()
        return self.received

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def body(message: EmailMessage) -> str:
        part = message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())


class Handler:
    """The aiosmtpd handler: files what the server accepts into an Inbox."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.inbox.received.append(message)  # type: ignore[arg-type]
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(app: Flask) -> Iterator[Inbox]:
    from kb.mail.sender import send_due

    def deliver() -> None:
        with app.app_context():
            send_due()

    inbox = Inbox(deliver)
    port = _free_port()
    controller = Controller(Handler(inbox), hostname="127.0.0.1", port=port)
    controller.start()
    app.config["KB_MAIL_URL"] = f"smtp://127.0.0.1:{port}"
    try:
        yield inbox
    finally:
        controller.stop()
