"""A tiny mail sender for merge notices: logs the message, sends it when KB_MAIL_URL is set.

Kept to one function, `send(recipients, subject, body)`, so that it can be swapped for the
project's mail module. Never raises: the merge is committed, a mail failure only gets logged.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from flask import current_app

log = logging.getLogger(__name__)


def send(recipients: Sequence[str], subject: str, body: str) -> bool:
    if not recipients:
        return False
    log.info("mail to %s: %s\n%s", ", ".join(recipients), subject, body)
    url = current_app.config.get("KB_MAIL_URL", "")
    if not url:
        return False
    parsed = urlparse(url)
    message = EmailMessage()
    message["From"] = current_app.config.get("KB_MAIL_FROM", "ne-pas-repondre@kb.local")
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    try:
        smtp_class = smtplib.SMTP_SSL if parsed.scheme == "smtps" else smtplib.SMTP
        with smtp_class(parsed.hostname or "127.0.0.1", parsed.port or 25, timeout=10) as smtp:
            if parsed.scheme == "smtp+starttls":
                smtp.starttls()
            if parsed.username:
                smtp.login(unquote(parsed.username), unquote(parsed.password or ""))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException):
        log.exception("could not send mail to %s", ", ".join(recipients))
        return False
    return True


def merge_notice(survivor_title: str, survivor_url: str, merged_title: str,
                 moderator: str) -> tuple[str, str]:
    subject = f"Fiches fusionnées : « {survivor_title} »"
    body = (
        "Bonjour,\n\n"
        f"Vous avez contribué à la fiche « {merged_title} » ou à la fiche « {survivor_title} ».\n"
        "Elles décrivaient la même initiative : un modérateur "
        f"({moderator}) les a réunies en une seule fiche.\n\n"
        f"La fiche commune : {survivor_url}\n"
        "L'ancienne adresse redirige vers elle et les deux historiques restent consultables.\n\n"
        "Merci pour votre contribution.\n"
    )
    return subject, body
