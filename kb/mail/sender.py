"""The sender: claims due outbox rows, sends them over SMTP (KB_MAIL_URL) or writes them to the
log, and records the outcome. The only module that talks SMTP.

Several senders may run at once (cron, a worker, the after-commit attempt): a row is claimed
with a lease (claimed_by, claimed_until) set by a conditional UPDATE, after a
`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so that two senders never hold the same row.
Each outcome is committed as soon as it is known: a sender killed mid-batch leaves at most the
row it was sending claimed until the lease ends, and that row is sent again with the same
Message-ID. Writes go through their own connections, never the caller's session.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import smtplib
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any
from urllib.parse import unquote, urlparse

from flask import current_app
from sqlalchemy import Connection, Row, and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from kb.extensions import db
from kb.mail.message import MailError, build_message
from kb.mail.models import BOUNCES_TO_SUPPRESS, MailState, MailSuppression, OutboxMail
from kb.timeutil import utcnow

log = logging.getLogger("kb.mail")

OUTBOX = OutboxMail.__table__
SUPPRESSIONS = MailSuppression.__table__
BATCH = 20
# Longer than a batch can take (BATCH x the SMTP timeout): a live sender keeps its rows.
LEASE = timedelta(minutes=15)
GIVE_UP_AFTER = timedelta(hours=24)
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=2)
# After a failed attempt right after a commit, requests stop trying for this long (seconds):
# an SMTP outage costs one request one short timeout, not every request.
NOW_PAUSE = 60.0


class TemporaryFailure(Exception):
    """Try again later (connection refused, timeout, SMTP 4xx)."""


class ConnectionFailure(TemporaryFailure):
    """The server cannot be reached: the rest of the batch would fail the same way."""


class PermanentFailure(Exception):
    """SMTP 5xx for this recipient: the mail bounced."""


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 1, 2, 4 … minutes, at most two hours between attempts."""
    return min(FIRST_RETRY * 2 ** max(0, attempts - 1), LONGEST_RETRY)


class Transport:
    """One SMTP connection, opened at the first mail and reused for the batch."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = urlparse(url)
        if self.url.scheme not in ("smtp", "smtps") or not self.url.hostname:
            raise MailError(f"KB_MAIL_URL invalide : {url!r} (attendu smtp://hôte:port)")
        self.timeout = timeout
        self.smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        parsed = self.url
        smtp_class = smtplib.SMTP_SSL if parsed.scheme == "smtps" else smtplib.SMTP
        port = parsed.port or (465 if parsed.scheme == "smtps" else 25)
        try:
            smtp = smtp_class(parsed.hostname or "", port, timeout=self.timeout)
            if parsed.username:
                if parsed.scheme == "smtp" and smtp.has_extn("starttls"):
                    smtp.starttls()
                smtp.login(unquote(parsed.username), unquote(parsed.password or ""))
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionFailure(f"serveur injoignable : {exc}") from exc
        return smtp

    def send(self, message: EmailMessage, recipient: str) -> None:
        if self.smtp is None:
            self.smtp = self._connect()
        try:
            self.smtp.send_message(message, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise self._failure(code, text) from exc
        except smtplib.SMTPSenderRefused as exc:  # our sender address: not the recipient's fault
            raise TemporaryFailure(f"{exc.smtp_code} {_text(exc.smtp_error)}") from exc
        except smtplib.SMTPResponseException as exc:
            raise self._failure(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:  # disconnected, timeout
            self.close()
            raise ConnectionFailure(f"connexion perdue : {exc}") from exc

    def _failure(self, code: int, text: bytes | str) -> Exception:
        if code == 421:  # the server is closing the connection: the batch waits for later
            self.close()
            return ConnectionFailure(f"{code} {_text(text)}")
        return _classify(code, text)

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.quit()
            self.smtp = None


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _classify(code: int, text: bytes | str) -> Exception:
    reason = f"{code} {_text(text)}"
    return PermanentFailure(reason) if 500 <= code < 600 else TemporaryFailure(reason)


@dataclass
class SendRun:
    sent: int = 0
    retrying: int = 0
    bounced: int = 0
    failed: int = 0       # given up after 24 h of temporary failures
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)
    connection_failed: bool = False


def _claimable(now: datetime) -> Any:
    return and_(OUTBOX.c.state == MailState.PENDING.value, OUTBOX.c.send_after <= now,
                or_(OUTBOX.c.claimed_until.is_(None), OUTBOX.c.claimed_until < now))


def _claim(now: datetime, token: str, message_ids: Sequence[str] | None) -> list[Row[Any]]:
    while True:
        with db.engine.begin() as conn:
            query = select(OUTBOX.c.id).where(_claimable(now))
            if message_ids is not None:
                query = query.where(OUTBOX.c.message_id.in_(message_ids))
            query = query.order_by(OUTBOX.c.send_after, OUTBOX.c.id).limit(BATCH)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(conn.scalars(query))
            if not ids:
                return []
            # Conditional: on SQLite another sender may have claimed some of these since the
            # SELECT; only the rows still claimable become ours.
            conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids), _claimable(now))
                         .values(claimed_by=token, claimed_until=now + LEASE))
            rows = list(conn.execute(select(OUTBOX).where(
                OUTBOX.c.id.in_(ids), OUTBOX.c.claimed_by == token).order_by(OUTBOX.c.id)))
        if rows:
            return rows
        # Every row found was taken by another sender meanwhile: look again.


def _finish(row: Row[Any], token: str, **values: Any) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(OUTBOX).where(OUTBOX.c.id == row.id, OUTBOX.c.claimed_by == token)
                     .values(claimed_by=None, claimed_until=None, **values))


def _is_suppressed(address: str) -> bool:
    with db.engine.connect() as conn:
        return conn.scalar(select(SUPPRESSIONS.c.address).where(
            SUPPRESSIONS.c.address == address.lower(),
            SUPPRESSIONS.c.suppressed_at.is_not(None))) is not None


def _note_bounce(conn: Connection, address: str, error: str, now: datetime) -> None:
    key = address.lower()
    changed = conn.execute(update(SUPPRESSIONS).where(SUPPRESSIONS.c.address == key).values(
        bounces=SUPPRESSIONS.c.bounces + 1, last_bounce_at=now, last_error=error)).rowcount
    if not changed:
        try:
            with conn.begin_nested():
                conn.execute(SUPPRESSIONS.insert().values(
                    address=key, bounces=1, last_bounce_at=now, last_error=error))
        except IntegrityError:  # another sender noted a bounce of this address meanwhile
            conn.execute(update(SUPPRESSIONS).where(SUPPRESSIONS.c.address == key).values(
                bounces=SUPPRESSIONS.c.bounces + 1, last_bounce_at=now, last_error=error))
    conn.execute(update(SUPPRESSIONS).where(
        SUPPRESSIONS.c.address == key, SUPPRESSIONS.c.bounces >= BOUNCES_TO_SUPPRESS,
        SUPPRESSIONS.c.suppressed_at.is_(None)).values(suppressed_at=now))


def _message(row: Row[Any], sender: str) -> EmailMessage:
    return build_message(sender=sender, to=row.recipient, subject=row.subject,
                         message_id=row.message_id, text=row.body_text, html=row.body_html,
                         headers=[(name, value) for name, value in row.headers or []],
                         attachments=[(name, content_type, base64.b64decode(content))
                                      for name, content_type, content in row.attachments or []])


def _deliver(row: Row[Any], transport: Transport | None, sender: str, token: str,
             now: datetime, run: SendRun) -> None:
    if not row.transactional and _is_suppressed(row.recipient):
        _finish(row, token, state=MailState.SUPPRESSED.value,
                last_error="adresse suspendue après des rejets répétés")
        run.suppressed += 1
        return
    if transport is None:
        log.info("e-mail (KB_MAIL_URL vide, non envoyé)\nÀ : %s\nObjet : %s\n\n%s",
                 row.recipient, row.subject, row.body_text)
        _finish(row, token, state=MailState.SENT.value, sent_at=now, attempts=row.attempts + 1)
        run.sent += 1
        return
    try:
        transport.send(_message(row, sender), row.recipient)
    except PermanentFailure as exc:
        with db.engine.begin() as conn:
            conn.execute(update(OUTBOX).where(OUTBOX.c.id == row.id, OUTBOX.c.claimed_by == token)
                         .values(claimed_by=None, claimed_until=None, state=MailState.BOUNCED.value,
                                 bounced_at=now, attempts=row.attempts + 1, last_error=str(exc)))
            _note_bounce(conn, row.recipient, str(exc), now)
        log.warning("courriel rejeté pour %s (%s) : %s", row.recipient, row.kind, exc)
        run.bounced += 1
        return
    except TemporaryFailure as exc:
        _retry_later(row, token, now, str(exc), run)
        if isinstance(exc, ConnectionFailure):
            run.connection_failed = True
        return
    _finish(row, token, state=MailState.SENT.value, sent_at=now, attempts=row.attempts + 1,
            last_error=None)
    run.sent += 1


def _retry_later(row: Row[Any], token: str, now: datetime, error: str, run: SendRun) -> None:
    attempts = row.attempts + 1
    if now - row.created_at >= GIVE_UP_AFTER:
        _finish(row, token, state=MailState.FAILED.value, attempts=attempts, last_error=error)
        log.error("courriel abandonné après 24 h d'échecs, à %s (%s) : %s",
                  row.recipient, row.kind, error)
        run.failed += 1
        return
    _finish(row, token, attempts=attempts, last_error=error,
            send_after=now + retry_delay(attempts))
    run.retrying += 1
    run.errors.append(f"{row.recipient} : {error}")


def send_due(now: datetime | None = None, *, message_ids: Sequence[str] | None = None,
             timeout: float = 20.0, stop: Callable[[], bool] = lambda: False) -> SendRun:
    """One pass: send every row due now (or only `message_ids`). Stops at the first
    connection failure (the next pass tries again) or when `stop()` says so."""
    clock = (lambda: now) if now is not None else utcnow
    config = current_app.config
    url = config.get("KB_MAIL_URL", "")
    transport = Transport(url, timeout) if url else None
    sender = config.get("KB_MAIL_FROM") or formataddr(("KB", "kb@localhost"))
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]
    run = SendRun()
    try:
        while not stop() and not run.connection_failed:
            rows = _claim(clock(), token, message_ids)
            if not rows:
                break
            for index, row in enumerate(rows):
                if stop() or run.connection_failed:
                    _release(rows[index:], token)
                    break
                _deliver(row, transport, sender, token, clock(), run)
    finally:
        if transport is not None:
            transport.close()
    return run


def _release(rows: Sequence[Row[Any]], token: str) -> None:
    """Give back rows not tried (stopping, or the server is down): due again at once."""
    with db.engine.begin() as conn:
        conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_([r.id for r in rows]),
                                          OUTBOX.c.claimed_by == token)
                     .values(claimed_by=None, claimed_until=None))


def send_now(message_ids: Sequence[str]) -> None:
    """Right after a commit: try the transactional mails it queued, with a short timeout.
    Never raises; on failure the rows wait for `kb mail send`, and the next requests of this
    process do not try for NOW_PAUSE seconds."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.setdefault("kb_mail", {"pause_until": 0.0})
    if time.monotonic() < state["pause_until"]:
        return
    run = send_due(message_ids=message_ids,
                   timeout=float(app.config.get("KB_MAIL_NOW_TIMEOUT", 5)))
    if run.connection_failed:
        state["pause_until"] = time.monotonic() + NOW_PAUSE
        log.warning("serveur de courriel injoignable ; envoi par `kb mail send` : %s",
                    "; ".join(run.errors))


def retry_all(now: datetime | None = None) -> int:
    """Every waiting row due now (after an outage is fixed); returns how many."""
    now = now or utcnow()
    with db.engine.begin() as conn:
        return conn.execute(update(OUTBOX).where(
            OUTBOX.c.state == MailState.PENDING.value, OUTBOX.c.send_after > now)
            .values(send_after=now)).rowcount


def probe(url: str, timeout: float = 5.0) -> None:
    """Connect to the mail server (and log in) and say NOOP: raises MailError or
    ConnectionFailure, in French, when it cannot be reached (`kb doctor`, kb/ops/checks.py)."""
    transport = Transport(url, timeout)
    smtp = transport._connect()
    try:
        code, text = smtp.noop()
    except (OSError, smtplib.SMTPException) as exc:
        raise ConnectionFailure(f"connexion perdue : {exc}") from exc
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()
    if code != 250:
        raise ConnectionFailure(f"le serveur répond {code} {_text(text)}")
