"""Read helpers for the moderation pages, the API and the freshness reminders."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from slugify import slugify
from sqlalchemy import func, select

from kb.auth.models import SYSTEM_EMAIL, User
from kb.extensions import db
from kb.moderation.models import AuditEntry, Report
from kb.moderation.standing import counted_author
from kb.sheets.models import ACCEPTED, Revision, RevisionStatus, Sheet, SheetState


@dataclass
class QueueFilters:
    kind: str = ""  # "new" | "edit" | ""
    tag: str = ""  # tag slug
    author: str = ""  # e-mail or part of a name

    @property
    def active(self) -> bool:
        return bool(self.kind or self.tag or self.author)


def is_new_sheet(revision: Revision) -> bool:
    return revision.sheet.approved_revision_id is None


def pending_revisions(filters: QueueFilters | None = None, limit: int = 500) -> list[Revision]:
    """Pending revisions, oldest first. Tag filtering reads the pending data itself (the tag may
    be new), so it is done here rather than in SQL; the queue is small by nature."""
    filters = filters or QueueFilters()
    query = (select(Revision).join(Sheet, Sheet.id == Revision.sheet_id)
             .where(Revision.status == RevisionStatus.PENDING.value,
                    counted_author(Revision.author_id))  # unconfirmed accounts wait outside
             .order_by(Revision.created_at, Revision.id))
    if filters.kind == "new":
        query = query.where(Sheet.approved_revision_id.is_(None))
    elif filters.kind == "edit":
        query = query.where(Sheet.approved_revision_id.is_not(None))
    if filters.author:
        needle = filters.author.strip().lower()  # "%" and "_" taken literally
        query = query.join(User, User.id == Revision.author_id).where(
            func.lower(User.email).contains(needle, autoescape=True)
            | func.lower(User.display_name).contains(needle, autoescape=True))
    revisions = _one_per_sheet_and_author(list(db.session.scalars(query)))
    if filters.tag:
        revisions = [r for r in revisions
                     if filters.tag in {slugify(t, max_length=80) for t in r.data.get("tags", [])}]
    return revisions[:limit]


def _one_per_sheet_and_author(revisions: list[Revision]) -> list[Revision]:
    """One row per sheet and author: their latest proposal, which carries the earlier ones
    (kb.sheets.operations supersedes a replaced proposal), in the place of the first one (it
    has waited since then)."""
    latest: dict[tuple[int, int], Revision] = {}
    for revision in revisions:
        key = (revision.sheet_id, revision.author_id)
        if key not in latest or revision.id > latest[key].id:
            latest[key] = revision
    seen: set[tuple[int, int]] = set()
    rows = []
    for revision in revisions:  # oldest first
        key = (revision.sheet_id, revision.author_id)
        if key not in seen:
            seen.add(key)
            rows.append(latest[key])
    return rows


def replaced_by(revision: Revision) -> Revision | None:
    """The later proposal of the same author that superseded `revision`, if any."""
    if revision.status != RevisionStatus.SUPERSEDED.value:
        return None
    return db.session.scalar(select(Revision).where(
        Revision.base_revision_id == revision.id, Revision.author_id == revision.author_id)
        .order_by(Revision.id).limit(1))


def pending_count() -> int:
    """Rows of the queue: sheets and authors with a proposal waiting."""
    waiting = select(Revision.sheet_id, Revision.author_id).distinct().where(
        Revision.status == RevisionStatus.PENDING.value, counted_author(Revision.author_id))
    return db.session.scalar(select(func.count()).select_from(waiting.subquery())) or 0


def open_reports() -> list[Report]:
    return list(db.session.scalars(
        select(Report).where(Report.closed_at.is_(None)).order_by(Report.created_at, Report.id)))


def reported_sheet_count() -> int:
    return db.session.scalar(select(func.count(func.distinct(Report.sheet_id))).where(
        Report.closed_at.is_(None))) or 0


def hidden_sheets() -> list[Sheet]:
    return list(db.session.scalars(
        select(Sheet).where(Sheet.state == SheetState.HIDDEN.value).order_by(Sheet.updated_at)))


def count_by_state() -> dict[str, int]:
    rows = db.session.execute(select(Sheet.state, func.count(Sheet.id)).group_by(Sheet.state))
    return {state: count for state, count in rows}


def audit_entries(sheet: Sheet | None = None, user: User | None = None,
                  limit: int = 200) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    if sheet is not None:
        query = query.where(AuditEntry.sheet_id == sheet.id)
    if user is not None:
        query = query.where(AuditEntry.target_user_id == user.id)
    return list(db.session.scalars(query.limit(limit)))


def reachable_contributors(sheet_ids: Iterable[int]) -> dict[int, list[User]]:
    """Per sheet, the people who can be asked about it: authors of its approved revisions whose
    account is neither blocked nor the import user."""
    ids = list(sheet_ids)
    result: dict[int, list[User]] = defaultdict(list)
    if not ids:
        return result
    rows = db.session.execute(
        select(Revision.sheet_id, User).distinct()
        .join(User, User.id == Revision.author_id)
        .where(Revision.sheet_id.in_(ids), Revision.status.in_(ACCEPTED),
               User.blocked.is_(False), User.email != SYSTEM_EMAIL)
        .order_by(Revision.sheet_id, User.id))
    for sheet_id, user in rows:
        result[sheet_id].append(user)
    return result


def users_page(search: str = "", limit: int = 100) -> list[tuple[User, int]]:
    """Accounts with their count of approved revisions, for the users page."""
    approved = (select(Revision.author_id, func.count(Revision.id).label("n"))
                .where(Revision.status.in_(ACCEPTED))
                .group_by(Revision.author_id).subquery())
    query = (select(User, func.coalesce(approved.c.n, 0))
             .outerjoin(approved, approved.c.author_id == User.id)
             .where(User.email != SYSTEM_EMAIL).order_by(User.created_at.desc()))
    if search.strip():
        needle = search.strip().lower()  # "%" and "_" taken literally
        query = query.where(func.lower(User.email).contains(needle, autoescape=True)
                            | func.lower(User.display_name).contains(needle, autoescape=True))
    return [(user, int(n)) for user, n in db.session.execute(query.limit(limit))]


def as_dict(revision: Revision) -> dict[str, Any]:
    """A queue row for the API."""
    from kb.timeutil import isoformat

    return {"revision": revision.id, "sheet": revision.sheet.slug, "title": revision.title,
            "kind": "new" if is_new_sheet(revision) else "edit",
            "author": revision.author.name, "created_at": isoformat(revision.created_at),
            "comment": revision.comment}
