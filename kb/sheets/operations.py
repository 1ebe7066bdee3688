"""Every change to sheets and revisions. Nothing here commits: callers use kb.transaction.commit()."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from kb.auth.models import SYSTEM_EMAIL, Role, User
from kb.auth.permissions import auto_approves
from kb.extensions import db
from kb.sheets.fields import empty_data, validate
from kb.sheets.filters import projection
from kb.sheets.merge import three_way_merge
from kb.sheets.models import Revision, RevisionStatus, Sheet, Tag
from kb.territories.places import complete, derive
from kb.text import slugify
from kb.timeutil import utcnow
from kb.transaction import mark_changed


class PermissionDenied(Exception):
    pass


@dataclass
class EditConflict(Exception):
    """The sheet changed since the edit started and the same fields were changed on both sides."""

    fields: list[str]
    head: Revision
    mine: dict[str, Any]  # the user's full data, kept so that nothing is lost


def unique_slug(title: str) -> str:
    base = slugify(title) or "fiche"
    slug, n = base, 2
    while db.session.scalar(select(Sheet.id).where(Sheet.slug == slug)) is not None:
        slug, n = f"{base}-{n}", n + 1
    return slug


_TAG_CACHE = "kb_tag_cache"


@event.listens_for(Session, "after_soft_rollback")
def _forget_tags(session: Session, _transaction: object) -> None:
    session.info.pop(_TAG_CACHE, None)


def tag_for(name: str) -> Tag:
    """The tag for `name`, created if new. All tags are loaded once per session: imports of
    thousands of sheets would otherwise query (and autoflush) once per tag."""
    cache: dict[str, Tag] | None = db.session.info.get(_TAG_CACHE)
    if cache is None:
        cache = {tag.slug: tag for tag in db.session.scalars(select(Tag))}
        db.session.info[_TAG_CACHE] = cache
    slug = slugify(name, 80) or "tag"
    if slug not in cache:
        cache[slug] = Tag(name=name, slug=slug)
        db.session.add(cache[slug])
    return cache[slug]


def system_user() -> User:
    """The author of imported revisions."""
    user = db.session.scalar(select(User).where(User.email == SYSTEM_EMAIL))
    if user is None:
        user = User(email=SYSTEM_EMAIL, display_name="Import", role=Role.ADMIN.value)
        db.session.add(user)
        db.session.flush()
    return user


def head_revision(sheet: Sheet) -> Revision | None:
    """The latest revision that was not rejected: the tip edits build on."""
    return db.session.scalar(
        select(Revision)
        .where(Revision.sheet_id == sheet.id, Revision.status != RevisionStatus.REJECTED.value)
        .order_by(Revision.id.desc())
        .limit(1)
    )


def publish(sheet: Sheet, revision: Revision, when: Any = None) -> None:
    """Point the sheet at `revision` and refresh its projection (filters, tags)."""
    data = revision.data
    sheet.approved_revision = revision
    sheet.approved_revision_id = revision.id
    sheet.title = data.get("title", "")
    # The place's official codes, derived even for revisions written before they existed.
    place = derive(data)
    projected = {**data, **place.codes()}
    sheet.city = place.city or data.get("city", "")
    # The filter columns, normalised as the declared facets compare them ("29", not "Finistère").
    for column, value in projection(projected).items():
        setattr(sheet, column, value)
    sheet.tags = [tag_for(name) for name in data.get("tags", [])]
    sheet.updated_at = when or utcnow()
    # An approved edit counts as a review: the people who know the sheet looked at it.
    sheet.last_reviewed_at = sheet.updated_at
    mark_changed([sheet])


def _approve(revision: Revision, reviewer: User, when: Any = None) -> None:
    revision.status = RevisionStatus.APPROVED.value
    revision.reviewed_by = reviewer
    revision.reviewed_at = when or utcnow()
    current = revision.sheet.approved_revision
    # A revision not flushed yet is the newest one.
    if current is None or revision.id is None or revision.id > current.id:
        publish(revision.sheet, revision, when)


def _add_revision(
    sheet: Sheet, data: dict[str, Any], author: User, comment: str, base: Revision | None
) -> Revision:
    from kb.moderation.spam import check_links  # spam rule for untrusted contributors

    check_links(base.data if base else None, data, author)
    revision = Revision(
        sheet=sheet, author=author, data=data, comment=comment[:300],
        base_revision_id=base.id if base else None, created_at=utcnow(),
        status=RevisionStatus.PENDING.value,
    )
    db.session.add(revision)
    if auto_approves(author):
        _approve(revision, author)
    return revision


def create_sheet(
    data: dict[str, Any], author: User, comment: str = "Création", slug: str | None = None,
    lenient_places: bool = False,
) -> Revision:
    """Create a sheet with its first revision, approved at once for moderators and trusted users.

    The place is resolved to official codes (kb.territories.places.complete): an ambiguous
    commune name raises AmbiguousPlace (a ValidationError), unless `lenient_places` (imports,
    which warn) keeps it unresolved.
    """
    if author.blocked:
        raise PermissionDenied("compte bloqué")
    cleaned, _ = complete(validate(data), strict=not lenient_places)
    sheet = Sheet(slug=slug or unique_slug(cleaned["title"]), created_at=utcnow())
    db.session.add(sheet)
    return _add_revision(sheet, cleaned, author, comment, None)


def edit_sheet(
    sheet: Sheet,
    changes: dict[str, Any],
    author: User,
    base_revision_id: int | None,
    comment: str = "",
    lenient_places: bool = False,
) -> Revision:
    """Save an edit that started from `base_revision_id`.

    `changes` may hold only some fields (API PATCH); missing ones keep their base value.
    A stale base is merged field by field; overlapping changes raise EditConflict.
    """
    if author.blocked:
        raise PermissionDenied("compte bloqué")
    cleaned = validate(changes, partial=True)
    head = head_revision(sheet)
    if head is None:
        raise ValueError("fiche sans révision")
    base = db.session.get(Revision, base_revision_id) if base_revision_id else head
    if base is None or base.sheet_id != sheet.id:
        raise ValueError("révision de départ inconnue pour cette fiche")
    mine = {**empty_data(), **base.data, **cleaned}
    if base.id != head.id:
        mine, conflicts = three_way_merge(base.data, head.data, mine)
        if conflicts:
            raise EditConflict(conflicts, head, mine)
    validate(mine)  # a merged result must still be a valid sheet
    mine, _ = complete(mine, base=base.data, strict=not lenient_places)
    if mine in (head.data, complete(head.data, strict=False)[0]):
        return head  # nothing changed (but codes the head's place implies): no empty revision
    return _add_revision(sheet, mine, author, comment, head)


def restore_revision(revision: Revision, author: User) -> Revision:
    """Restore an old revision's content as a new revision on top of the head."""
    sheet = revision.sheet
    head = head_revision(sheet)
    comment = f"Restauration de la révision {revision.id}"
    return _add_revision(sheet, dict(revision.data), author, comment, head)


def approve_revision(revision: Revision, moderator: User) -> None:
    if not moderator.is_moderator:
        raise PermissionDenied("réservé aux modérateurs")
    if revision.status != RevisionStatus.PENDING.value:
        raise ValueError("cette révision a déjà été traitée")
    _approve(revision, moderator)


def reject_revision(revision: Revision, moderator: User, reason: str) -> None:
    if not moderator.is_moderator:
        raise PermissionDenied("réservé aux modérateurs")
    if revision.status != RevisionStatus.PENDING.value:
        raise ValueError("cette révision a déjà été traitée")
    if not reason.strip():
        raise ValueError("un motif de refus est nécessaire")
    revision.status = RevisionStatus.REJECTED.value
    revision.reviewed_by_id = moderator.id
    revision.reviewed_at = utcnow()
    revision.review_reason = reason.strip()[:2000]


def approved_count(user: User) -> int:
    return db.session.scalar(
        select(func.count(Revision.id)).where(
            Revision.author_id == user.id, Revision.status == RevisionStatus.APPROVED.value
        )
    ) or 0
