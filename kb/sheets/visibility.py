"""Which sheet and which revision a person sees, and what their edits build on. Pages, forms,
the API, moderation, freshness, duplicates and embeds all ask here.

Readers see approved text only; a proposal is visible to its author and to reviewers. Each
author builds on what they may see: the approved revision, or their own latest proposal.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kb.auth.models import User
from kb.auth.permissions import Capability, can, capabilities
from kb.errors import NotFound
from kb.extensions import db
from kb.sheets.models import Revision, RevisionStatus, Sheet, SheetState

SHEET_NOT_FOUND = "cette fiche n'existe pas"
REVISION_NOT_FOUND = "cette révision n'existe pas ou n'est pas visible"


class Published:
    """The audience of open outputs (embeds, oEmbed, reports): published sheets only."""

    def __repr__(self) -> str:
        return "PUBLISHED"


PUBLISHED = Published()


def _person(user: Any) -> User | None:
    """`user` if it is an account that may act (logged in, not blocked), else None."""
    return user if isinstance(user, User) and capabilities(user) else None


def latest_revision(sheet: Sheet, author: User | None = None,
                    status: RevisionStatus | None = None) -> Revision | None:
    query = select(Revision).where(Revision.sheet_id == sheet.id)
    if author is not None:
        query = query.where(Revision.author_id == author.id)
    if status is not None:
        query = query.where(Revision.status == status.value)
    return db.session.scalar(query.order_by(Revision.id.desc()).limit(1))


def has_pending(sheet: Sheet) -> bool:
    return latest_revision(sheet, status=RevisionStatus.PENDING) is not None


def visible_revision(sheet: Sheet, user: Any) -> Revision | None:
    """The revision `user` sees when opening `sheet`, or None if the sheet is not visible to
    them. Approved text for everyone; a never-approved sheet only to its author (their latest
    revision) and to reviewers (its latest proposal); a hidden sheet only to moderators."""
    if sheet.state == SheetState.HIDDEN and not can(user, Capability.MODERATE):
        return None
    if sheet.approved_revision is not None:
        return sheet.approved_revision
    if can(user, Capability.VIEW_REVISION):
        return (latest_revision(sheet, status=RevisionStatus.PENDING)
                or latest_revision(sheet))
    person = _person(user)
    return latest_revision(sheet, author=person) if person is not None else None


def pending_for(sheet: Sheet, user: Any) -> Revision | None:
    """The proposal on `sheet` that `user` is told about: reviewers the latest one, authors
    their own latest one."""
    if can(user, Capability.VIEW_REVISION):
        return latest_revision(sheet, status=RevisionStatus.PENDING)
    person = _person(user)
    if person is None:
        return None
    return latest_revision(sheet, author=person, status=RevisionStatus.PENDING)


def editing_base(sheet: Sheet, user: Any) -> Revision | None:
    """What `user`'s edits of `sheet` build on (their "head"): the approved revision, or their
    own latest pending proposal (never another person's). People who publish at once build on
    the approved revision. On a never-approved sheet: their own latest revision (None for
    anyone else, moderators included: they review it first)."""
    person = _person(user)
    if person is None:
        return None
    approved = sheet.approved_revision
    if approved is None:
        return latest_revision(sheet, author=person)
    if can(person, Capability.PUBLISH, sheet):
        return approved
    return latest_revision(sheet, author=person, status=RevisionStatus.PENDING) or approved


def may_build_on(revision: Revision, user: Any) -> bool:
    """A proposal may start from an approved revision or from one of its author's own."""
    person = _person(user)
    return revision.status == RevisionStatus.APPROVED or (
        person is not None and revision.author_id == person.id)


def find_sheet(slug: str, audience: Any) -> Sheet | None:
    """The sheet at `slug` if `audience` (a user, None for anonymous, or PUBLISHED) may open it.
    Archived and merged sheets keep their approved text (their pages show a banner or
    redirect)."""
    sheet = db.session.scalar(select(Sheet).where(Sheet.slug == slug))
    if sheet is None:
        return None
    if isinstance(audience, Published):
        return sheet if sheet.is_published else None
    if visible_revision(sheet, audience) is None:
        return None
    return sheet


def get_sheet_or_404(slug: str, audience: Any) -> Sheet:
    sheet = find_sheet(slug, audience)
    if sheet is None:
        raise NotFound(SHEET_NOT_FOUND)
    return sheet


def awaiting_first_review(slug: str) -> Sheet | None:
    """The sheet at `slug` if it is a new sheet whose first proposal waits for review: its
    link answers "en cours de relecture" to the people who may not read it (a colleague given
    the link), never with any of its text. Hidden sheets and refused proposals stay unknown."""
    sheet = db.session.scalar(select(Sheet).where(Sheet.slug == slug))
    if sheet is None or sheet.approved_revision_id is not None \
            or sheet.state != SheetState.ACTIVE:
        return None
    return sheet if has_pending(sheet) else None


def get_revision_or_404(sheet: Sheet, revision_id: Any, user: Any) -> Revision:
    """A revision of `sheet` that `user` may read."""
    revision = db.session.get(Revision, revision_id) if isinstance(revision_id, int) else None
    if revision is None or revision.sheet_id != sheet.id \
            or not can(user, Capability.VIEW_REVISION, revision):
        raise NotFound(REVISION_NOT_FOUND)
    return revision
