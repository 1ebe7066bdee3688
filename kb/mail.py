"""Outgoing e-mail: SMTP from KB_MAIL_URL (smtp://host:port, smtps://…, user:password@ allowed),
else the message is written to the log. French text; a plain-text body, and an HTML
alternative when the mail has one (`render()` builds both from `<name>.txt` and `<name>.html`).
No tracking: no images, no remote resources, links are plain links to KB_BASE_URL.

Notifications decided inside a transaction are queued with `queue()` and sent only after the
commit succeeded (an author must never be told of a decision that was rolled back); `send()`
sends at once and raises `MailError`, for callers that must know (the reminder digest).
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any
from urllib.parse import unquote, urlparse

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
_OUTBOX = "kb_outbox"


class MailError(Exception):
    pass


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    html: str | None = None
    # Extra headers, e.g. List-Unsubscribe for digests people subscribed to.
    headers: tuple[tuple[str, str], ...] = ()
    kind: str = "notice"          # what caused it, e.g. "account.confirm", "question.relay", "letter"
    transactional: bool = False   # sent right after commit, ignores preferences and suppression
    dedupe_key: str | None = None # a second queue() with the same key adds nothing


def render(to: str, subject: str, template: str, **context: Any) -> Mail:
    """A mail from `templates/<template>.txt` and, when it exists, `<template>.html`."""
    from flask import render_template
    from jinja2 import TemplateNotFound

    context.setdefault("base_url", current_app.config["KB_BASE_URL"])
    context.setdefault("subject", subject)
    body = render_template(f"{template}.txt", **context)
    try:
        html: str | None = render_template(f"{template}.html", **context)
    except TemplateNotFound:
        html = None
    return Mail(to=to, subject=subject, body=body, html=html)


def build_message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Message-ID"] = make_msgid(domain="kb.local")
    message["Auto-Submitted"] = "auto-generated"  # no vacation replies
    for name, value in mail.headers:
        message[name] = value
    message.set_content(mail.body, charset="utf-8")
    if mail.html:
        message.add_alternative(mail.html, subtype="html", charset="utf-8")
    return message


def send(mail: Mail) -> None:
    """Send now, or log when KB_MAIL_URL is empty. Raises MailError when SMTP fails."""
    config = current_app.config
    url = config.get("KB_MAIL_URL", "")
    message = build_message(mail, config.get("KB_MAIL_FROM") or formataddr(("KB", "kb@localhost")))
    if not url:
        log.info("e-mail (KB_MAIL_URL vide, non envoyé)\nÀ : %s\nObjet : %s\n\n%s",
                 mail.to, mail.subject, mail.body)
        return
    parsed = urlparse(url)
    if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
        raise MailError(f"KB_MAIL_URL invalide : {url!r} (attendu smtp://hôte:port)")
    smtp_class = smtplib.SMTP_SSL if parsed.scheme == "smtps" else smtplib.SMTP
    port = parsed.port or (465 if parsed.scheme == "smtps" else 25)
    try:
        with smtp_class(parsed.hostname, port, timeout=20) as smtp:
            if parsed.username:
                if parsed.scheme == "smtp" and smtp.has_extn("starttls"):
                    smtp.starttls()
                smtp.login(unquote(parsed.username), unquote(parsed.password or ""))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"envoi impossible à {mail.to} : {exc}") from exc


def queue(mail: Mail) -> None:
    """Send `mail` after the current transaction commits (dropped if it rolls back)."""
    from kb.extensions import db

    db.session.info.setdefault(_OUTBOX, []).append(mail)


def _send_outbox(session: Session) -> None:
    mails: list[Mail] = session.info.pop(_OUTBOX, [])
    for mail in mails:
        try:
            send(mail)
        except Exception:  # noqa: BLE001 - the commit is done; a lost notification is only logged
            log.exception("notification non envoyée à %s", mail.to)


def _drop_outbox(session: Session, *_: Any) -> None:
    session.info.pop(_OUTBOX, None)


event.listen(Session, "after_commit", _send_outbox)
event.listen(Session, "after_rollback", _drop_outbox)
