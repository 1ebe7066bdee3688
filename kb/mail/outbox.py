"""Queueing: `queue(mail)` adds an outbox row to the current transaction (a rolled-back change
sends nothing, a committed one always sends); transactional rows are tried right after the
commit. Also the figures of the outbox (`status`, `mails_per_person_per_month`) and the
addresses suppressed after bounces."""

from __future__ import annotations

import base64
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from email.utils import getaddresses, make_msgid
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kb.extensions import db
from kb.mail.message import LIST_HEADERS, Mail
from kb.mail.models import MailState, MailSuppression, OutboxMail
from kb.timeutil import utcnow
from kb.urls import base_url

log = logging.getLogger("kb.mail")

_SEND_NOW = "kb_mail_send_now"  # message ids of transactional rows queued in this transaction
_KEYS = "kb_mail_dedupe_keys"   # dedupe keys queued in this transaction


def single_address(to: str) -> str:
    """The one address of `to`; a list of people is refused (one mail per person)."""
    found = [address for _, address in getaddresses([to]) if address]
    if len(found) != 1 or "@" not in found[0]:
        raise ValueError(f"un courriel va à une seule personne, pas à {to!r}")
    return found[0]


def queue(mail: Mail) -> OutboxMail | None:
    """Write `mail` to the outbox in the current transaction. Returns the row, or None when a
    row with the same dedupe key exists (two transactions racing on one key: the second
    commit fails on the unique key)."""
    recipient = single_address(mail.to)
    if mail.dedupe_key is not None:
        keys: set[str] = db.session.info.setdefault(_KEYS, set())
        if mail.dedupe_key in keys or db.session.scalar(select(OutboxMail.id).where(
                OutboxMail.dedupe_key == mail.dedupe_key)) is not None:
            return None
        keys.add(mail.dedupe_key)
    headers = [[name, value] for name, value in mail.headers
               if not (mail.transactional and name.lower() in LIST_HEADERS)]
    domain = urlparse(base_url()).hostname or "kb.local"
    now = utcnow()
    row = OutboxMail(recipient=recipient, kind=mail.kind, dedupe_key=mail.dedupe_key,
                     subject=mail.subject, body_text=mail.body, body_html=mail.html,
                     headers=headers, transactional=mail.transactional,
                     attachments=[[name, content_type, base64.b64encode(content).decode()]
                                  for name, content_type, content in mail.attachments],
                     message_id=make_msgid(domain=domain), state=MailState.PENDING.value,
                     created_at=now, send_after=now, attempts=0)
    db.session.add(row)
    if mail.transactional:
        db.session.info.setdefault(_SEND_NOW, []).append(row.message_id)
    return row


def _after_commit(session: Session) -> None:
    session.info.pop(_KEYS, None)
    message_ids: list[str] = session.info.pop(_SEND_NOW, [])
    if not message_ids:
        return
    from kb.mail.sender import send_now

    try:
        send_now(message_ids)
    except Exception:  # noqa: BLE001 - the commit is done; the row waits for `kb mail send`
        log.exception("envoi immédiat impossible ; `kb mail send` s'en chargera")


def _after_rollback(session: Session, *_: Any) -> None:
    session.info.pop(_KEYS, None)
    session.info.pop(_SEND_NOW, None)


# --- figures --------------------------------------------------------------------------------

@dataclass(frozen=True)
class MailStatus:
    pending: int                 # never tried yet
    retrying: int                # tried, failed for a temporary reason, will be tried again
    bounced: int                 # refused for good (rows)
    suppressed: int              # addresses that get no non-transactional mail
    oldest_pending_seconds: int  # age of the oldest mail not sent yet (0: none)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def late(self) -> bool:
        return self.oldest_pending_seconds > 3600


def status(now: datetime | None = None) -> MailStatus:
    now = now or utcnow()
    pending = OutboxMail.state == MailState.PENDING.value
    waiting, tried = db.session.execute(select(
        func.count().filter(OutboxMail.attempts == 0), func.count().filter(OutboxMail.attempts > 0))
        .where(pending)).one()
    oldest = db.session.scalar(select(func.min(OutboxMail.created_at)).where(pending))
    return MailStatus(
        pending=int(waiting or 0), retrying=int(tried or 0),
        bounced=db.session.scalar(select(func.count()).where(
            OutboxMail.state == MailState.BOUNCED.value)) or 0,
        suppressed=db.session.scalar(select(func.count()).where(
            MailSuppression.suppressed_at.is_not(None))) or 0,
        oldest_pending_seconds=max(0, int((now - oldest).total_seconds())) if oldest else 0)


def mails_per_person_per_month(months: int = 3, now: datetime | None = None,
                               ) -> dict[str, tuple[float, int]]:
    """kind -> (mean, max) mails per person per month over the last `months` months (30 days
    each). Every mail queued counts except those suppressed. The mean is over every person who
    was sent any mail in the period; the max is the most one person got in one month."""
    now = now or utcnow()
    start = now - timedelta(days=30 * months)
    rows = db.session.execute(
        select(OutboxMail.kind, OutboxMail.recipient, OutboxMail.created_at)
        .where(OutboxMail.created_at >= start,
               OutboxMail.state != MailState.SUPPRESSED.value)).all()
    people = {recipient.lower() for _, recipient, _ in rows}
    totals: dict[str, int] = {}
    per_month: dict[tuple[str, str, int], int] = {}
    for kind, recipient, created in rows:
        totals[kind] = totals.get(kind, 0) + 1
        key = (kind, recipient.lower(), min(months - 1, (created - start).days // 30))
        per_month[key] = per_month.get(key, 0) + 1
    highest: dict[str, int] = {}
    for (kind, _, _), count in per_month.items():
        highest[kind] = max(highest.get(kind, 0), count)
    return {kind: (totals[kind] / months / len(people), highest[kind]) for kind in sorted(totals)}


# --- suppression ----------------------------------------------------------------------------

def suppression(address: str) -> MailSuppression | None:
    """The suppression of `address` when it is suppressed, else None."""
    row = db.session.get(MailSuppression, address.lower())
    return row if row is not None and row.suppressed_at is not None else None


def suppressed_addresses() -> list[MailSuppression]:
    return list(db.session.scalars(select(MailSuppression).where(
        MailSuppression.suppressed_at.is_not(None)).order_by(MailSuppression.suppressed_at.desc())))


def clear_suppression(address: str) -> None:
    """The person confirmed the address again: it receives everything anew."""
    db.session.execute(delete(MailSuppression).where(MailSuppression.address == address.lower()))


def forget_address(address: str) -> None:
    """An account is deleted: its mails (sent or not) and its bounce record go with it."""
    db.session.execute(delete(OutboxMail).where(func.lower(OutboxMail.recipient) == address.lower()))
    clear_suppression(address)
