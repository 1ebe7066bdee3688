"""One submission token per form, so that sending a form twice saves it once.

Every sheet form carries a hidden random token. The first send claims it (a row in
`submissions`, unique per user) in the same transaction that saves the revision; a second send
of the same form (double click, two tabs, the browser re-posting after "back") finds the claim
and gets the revision the first send saved. Two sends at the same moment are serialised by the
database: on PostgreSQL the second insert waits on the unique index, then fails and reads the
winner's row; on SQLite the claim starts with the write lock (`kb.transaction.savepoint`).

A send with the same token but other content (the user went back and changed the form) is not
a replay: the view keeps the user's text and says what happened.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kb.extensions import db
from kb.sheets.models import Revision
from kb.timeutil import utcnow
from kb.transaction import begin_write, savepoint


class Submission(db.Model):  # type: ignore[name-defined]
    """A form token already used by its user, and the revision it saved."""

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("user_id", "token", name="uq_submissions_user_token"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(32))
    # What was sent (a hash of the cleaned fields): a replay is the same token *and* content.
    digest: Mapped[str] = mapped_column(String(64))
    # Null only inside the transaction that claims the token and then saves the revision.
    revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("revisions.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    revision: Mapped[Revision | None] = relationship()


def new_token() -> str:
    return uuid.uuid4().hex


def parse_token(value: Any) -> str | None:
    """The token if `value` is one we could have issued, else None (the form is then saved
    without replay protection: an old page, an API client, a hand-made request)."""
    try:
        return uuid.UUID(str(value or "")).hex
    except ValueError:
        return None


def digest(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Claim:
    """The outcome of `claim`: either ours to fill (`previous` is None) or already used."""

    submission: Submission | None  # ours, to be given the revision with `done`
    previous: Revision | None = None  # what an earlier send of this form saved
    same_content: bool = False  # the earlier send had the same content: a plain replay

    def done(self, revision: Revision) -> None:
        if self.submission is not None:
            self.submission.revision = revision


def _find(user_id: int, token: str) -> Submission | None:
    return db.session.scalar(select(Submission).where(
        Submission.user_id == user_id, Submission.token == token))


def claim(token: str | None, user_id: int, data: dict[str, Any]) -> Claim:
    """Reserve `token` for this send, or report what an earlier send of it saved.

    Call it just before saving, in the transaction that saves; roll back on failure (the token
    is then free again). Nothing is claimed without a valid token.
    """
    if token is None:
        return Claim(None)
    sent = digest(data)
    begin_write()  # SQLite: a second send waits here until the first one has committed
    earlier = _find(user_id, token)
    if earlier is None:
        submission = Submission(user_id=user_id, token=token, digest=sent, created_at=utcnow())
        try:
            with savepoint():
                db.session.add(submission)
        except IntegrityError:
            # PostgreSQL: the other send committed while this insert waited on the index.
            earlier = _find(user_id, token)
            if earlier is None:
                raise
        else:
            return Claim(submission)
    return Claim(None, earlier.revision, earlier.digest == sent)
