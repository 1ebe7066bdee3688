"""A mail as the base writes it (`Mail`), built from templates (`render`), and the MIME message
the sender makes of an outbox row (`build_message`): the only place that builds MIME."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from kb.urls import base_url


class MailError(Exception):
    pass


@dataclass(frozen=True)
class Mail:
    to: str  # one person's address: one mail per person, never a list
    subject: str
    body: str
    html: str | None = None
    # Extra headers, e.g. List-Unsubscribe for digests people subscribed to.
    headers: tuple[tuple[str, str], ...] = ()
    kind: str = "notice"          # what caused it, e.g. "account.confirm", "question.relay", "letter"
    transactional: bool = False   # sent right after commit, ignores preferences and suppression
    dedupe_key: str | None = None  # a second queue() with the same key adds nothing
    # Files sent with the mail: (filename, MIME type with parameters, content), e.g.
    # ("visite.ics", "text/calendar; method=REQUEST", b"BEGIN:VCALENDAR...").
    attachments: tuple[tuple[str, str, bytes], ...] = ()


def render(to: str, subject: str, template: str, **context: Any) -> Mail:
    """A mail from `templates/<template>.txt` and, when it exists, `<template>.html`."""
    from flask import render_template
    from jinja2 import TemplateNotFound

    context.setdefault("base_url", base_url())
    context.setdefault("subject", subject)
    body = render_template(f"{template}.txt", **context)
    try:
        html: str | None = render_template(f"{template}.html", **context)
    except TemplateNotFound:
        html = None
    return Mail(to=to, subject=subject, body=body, html=html)


# Headers of mail people subscribed to: transactional mails never carry them (RFC 2369/8058).
LIST_HEADERS = frozenset({"list-id", "list-unsubscribe", "list-unsubscribe-post"})


def build_message(*, sender: str, to: str, subject: str, message_id: str, text: str,
                  html: str | None, headers: Iterable[tuple[str, str]],
                  attachments: Iterable[tuple[str, str, bytes]] = ()) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # no vacation replies (RFC 3834)
    for name, value in headers:
        message[name] = value
    message.set_content(text, charset="utf-8")
    if html:
        message.add_alternative(html, subtype="html", charset="utf-8")
    for filename, content_type, content in attachments:
        kind, _, rest = content_type.partition(";")
        maintype, _, subtype = kind.strip().partition("/")
        params = dict(p.strip().split("=", 1) for p in rest.split(";") if "=" in p)
        # Bytes, base64-encoded: a calendar's CRLF line ends reach the client intact.
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename,
                               params=params)
    return message
