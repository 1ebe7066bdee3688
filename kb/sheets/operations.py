"""Every change to sheets and revisions. Nothing here commits: callers use kb.transaction.commit().

The review model: a proposal is based on what its author may see (kb.sheets.visibility); an
edit saved from a stale base is merged field by field onto the author's own head; people who
publish at once publish only their own changes, applied to the approved revision; approving a
proposal older than the approved revision merges it then, the moderator choosing per field
where both sides changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kb.auth.models import SYSTEM_EMAIL, Role, User
from kb.auth.permissions import Capability, can, check
from kb.errors import Conflict, Invalid, NotFound, PermissionDenied
from kb.extensions import db
from kb.sheets.fields import FIELD_NAMES, FIELDS_BY_NAME, empty_data, validate
from kb.sheets.filters import multi_keys, projection
from kb.sheets.merge import three_way_merge
from kb.sheets.models import (
    Revision,
    RevisionStatus,
    Sheet,
    SheetKey,
    SheetState,
    Tag,
)
from kb.sheets.signals import check_revision
from kb.sheets.visibility import SHEET_NOT_FOUND, editing_base, may_build_on
from kb.territories.places import complete, derive
from kb.text import slugify
from kb.timeutil import utcnow
from kb.transaction import mark_changed, savepoint

BAD_BASE = ("révision de départ non valable : partez de la version publiée ou de votre propre "
            "proposition")


class EditConflict(Conflict):
    """The author's head changed since the edit started and the same fields were changed on
    both sides. `theirs` is that head: a revision the author may see (the approved one, or
    their own proposal), never another person's draft."""

    def __init__(self, fields: list[str], theirs: Revision, mine: dict[str, Any]):
        super().__init__("la fiche a été modifiée depuis la révision de départ ; les mêmes "
                         "champs ont changé des deux côtés", fields=fields)
        self.fields = fields
        self.theirs = theirs
        self.mine = mine  # the user's full data, kept so that nothing is lost


class ReviewConflict(Conflict):
    """Approving a stale proposal needs a choice for fields changed on both sides."""

    def __init__(self, plan: ReviewPlan, missing: list[str]):
        super().__init__("la version publiée a changé depuis cette proposition et les mêmes "
                         "champs ont changé des deux côtés : choisissez champ par champ "
                         "(" + ", ".join(FIELDS_BY_NAME[f].label for f in missing) + ")",
                         fields=missing, published_revision=plan.published_id,
                         proposal={f: plan.proposal.data.get(f) for f in missing},
                         published={f: plan.published_data.get(f) for f in missing})
        self.plan = plan
        self.fields = missing


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
        user = User(email=SYSTEM_EMAIL, display_name="Import", role=Role.ADMIN.value,
                    email_confirmed_at=utcnow())
        db.session.add(user)
        db.session.flush()
    return user


def _slug_from_unreviewed_title(sheet: Sheet, revision: Revision) -> bool:
    """At a first publication: whether the sheet's address was made from the title of a first
    proposal that is not the text published (never reviewed: it must not stay in every link)."""
    if sheet.approved_revision_id is not None or revision.base_revision_id is None:
        return False
    first = db.session.scalar(select(Revision).where(Revision.sheet_id == sheet.id)
                              .order_by(Revision.id).limit(1))
    if first is None or first.id == revision.id:
        return False
    made_from = slugify(first.title) or "fiche"
    made_from_first = sheet.slug == made_from or (
        sheet.slug.startswith(made_from + "-") and sheet.slug[len(made_from) + 1:].isdigit())
    return made_from_first and slugify(revision.title) != made_from


def publish(sheet: Sheet, revision: Revision, when: Any = None) -> None:
    """Point the sheet at `revision` and refresh its projection (filters, tags)."""
    data = revision.data
    before = sheet.approved_revision.data if sheet.approved_revision is not None else {}
    if _slug_from_unreviewed_title(sheet, revision):
        sheet.slug = unique_slug(revision.title)  # never public before: nothing to redirect
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
    _write_keys(sheet, before, data)
    sheet.updated_at = when or utcnow()
    # An approved edit counts as a review: the people who know the sheet looked at it.
    sheet.last_reviewed_at = sheet.updated_at
    mark_changed([sheet])


def _write_keys(sheet: Sheet, before: dict[str, Any], data: dict[str, Any]) -> None:
    """sheet_keys: the approved revision's thématiques (with families), publics, zone...
    Nothing is read when neither the old nor the new revision has any (most imports)."""
    wanted = [(name, key) for name, keys in multi_keys(data).items() for key in keys]
    if not wanted and not any(multi_keys(before).values()):
        return
    current = {(row.field, row.key): row for row in sheet.keys}
    sheet.keys = [current.get(pair) or SheetKey(field=pair[0], key=pair[1]) for pair in wanted]


def proposal_root(revision: Revision) -> Revision | None:
    """The approved revision a proposal started from: its base, or its base's base while those
    are proposals (an author's chain of own proposals). None for a never-approved start."""
    seen: set[int] = set()
    base_id = revision.base_revision_id
    while base_id is not None and base_id not in seen:
        seen.add(base_id)
        base = db.session.get(Revision, base_id)
        if base is None:
            return None
        if base.status == RevisionStatus.APPROVED:
            return base
        base_id = base.base_revision_id
    return None


def _settle(revision: Revision, reviewer: User, status: RevisionStatus = RevisionStatus.APPROVED,
            when: Any = None) -> None:
    """Give `revision` its review status. Pending proposals it was built on (its author's chain,
    saved before replaced proposals were marked at once) become "superseded": their content is
    part of what was reviewed, but they were no decision of their own."""
    revision.status = status.value
    revision.reviewed_by = reviewer
    revision.reviewed_at = when or utcnow()
    seen: set[int] = set()
    current = db.session.get(Revision, revision.base_revision_id) \
        if revision.base_revision_id else None
    while current is not None and current.id not in seen \
            and current.status == RevisionStatus.PENDING.value:
        seen.add(current.id)
        current.status = RevisionStatus.SUPERSEDED.value
        current = db.session.get(Revision, current.base_revision_id) \
            if current.base_revision_id else None


def _add_revision(
    sheet: Sheet, data: dict[str, Any], author: User, comment: str, base: Revision | None
) -> Revision:
    """Store a revision built on `base` (the author's head); published at once when the author
    may publish (then `base` is the approved revision, or None for a first version)."""
    check_revision(base.data if base else None, data, author)  # e.g. the spam rule on links
    revision = Revision(
        sheet=sheet, author=author, data=data, comment=comment[:300],
        base_revision_id=base.id if base else None, created_at=utcnow(),
        status=RevisionStatus.PENDING.value,
    )
    db.session.add(revision)
    # Never for an unconfirmed account; on the sheet: members of its verified structure too.
    if can(author, Capability.PUBLISH, sheet):
        _settle(revision, author)
        publish(sheet, revision)
    elif base is not None and base.author_id == author.id \
            and base.status == RevisionStatus.PENDING.value:
        # The author replaced their own proposal: the new one carries it and is the one to
        # review. The old one is no decision of anyone's: never approved, never counted.
        base.status = RevisionStatus.SUPERSEDED.value
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
    check(author, Capability.CONTRIBUTE)
    cleaned, _ = complete(validate(data), strict=not lenient_places)
    return _add_revision(new_sheet(cleaned["title"], slug), cleaned, author, comment, None)


def new_sheet(title: str, slug: str | None = None) -> Sheet:
    """A new sheet row. A slug made from the title is inserted at once, in a savepoint: another
    request may take the same slug between the lookup and the insert, and this one then takes
    the next free slug instead of failing. A given slug (imports) is the caller's to check."""
    if slug:
        sheet = Sheet(slug=slug, created_at=utcnow())
        db.session.add(sheet)
        return sheet
    for attempt in range(5):
        sheet = Sheet(slug=unique_slug(title), created_at=utcnow())
        try:
            with savepoint():
                db.session.add(sheet)
        except IntegrityError:
            if attempt == 4:
                raise
            continue
        break
    return sheet


def _base_for(sheet: Sheet, author: User, revision_id: int) -> Revision:
    """The revision an edit says it started from, if the author may build on it. The refusal
    says nothing of the revision (not even whether it exists)."""
    base = db.session.get(Revision, revision_id)
    if base is None or base.sheet_id != sheet.id or not may_build_on(base, author):
        raise Invalid(BAD_BASE, fields={"base_revision": BAD_BASE})
    return base


def edit_sheet(
    sheet: Sheet,
    changes: dict[str, Any],
    author: User,
    base_revision_id: int | None,
    comment: str = "",
    lenient_places: bool = False,
) -> Revision:
    """Save an edit that started from `base_revision_id` (default: the author's head).

    `changes` may hold only some fields (API PATCH); missing ones keep their base value. The
    author's changes (their text against the base) are applied to their head: the approved
    revision, or their own latest proposal (kb.sheets.visibility.editing_base). Fields changed
    on both sides differently raise EditConflict, which shows only that head.
    """
    check(author, Capability.CONTRIBUTE)
    if sheet.state == SheetState.MERGED and sheet.merged_into is not None:
        # Its page redirects to the survivor: a change kept here would never be read again.
        survivor = sheet.merged_into
        raise Conflict(f"cette fiche a été fusionnée dans « {survivor.title} » "
                       f"(/fiches/{survivor.slug}) : modifiez plutôt celle-ci",
                       merged_into=survivor.slug)
    cleaned = validate(changes, partial=True)
    head = editing_base(sheet, author)
    base = _base_for(sheet, author, base_revision_id) if base_revision_id else head
    if base is None and not can(author, Capability.PUBLISH):
        raise NotFound(SHEET_NOT_FOUND)  # another person's never-approved sheet
    mine = {**empty_data(), **(base.data if base else {}), **cleaned}
    if head is not None and base is not None and base.id != head.id:
        mine, conflicts = three_way_merge(base.data, head.data, mine)
        if conflicts:
            raise EditConflict(conflicts, head, mine)
    validate(mine)  # a merged result must still be a valid sheet
    mine, _ = complete(mine, base=base.data if base else None, strict=not lenient_places)
    if head is not None and mine in (head.data, complete(head.data, strict=False)[0]):
        return head  # nothing changed (but codes the head's place implies): no empty revision
    return _add_revision(sheet, mine, author, comment, head)


def restore_revision(revision: Revision, author: User) -> Revision:
    """Restore an old revision's content (approved, or the author's own) as a new revision on
    top of the author's head."""
    check(author, Capability.CONTRIBUTE)
    sheet = revision.sheet
    if not may_build_on(revision, author):
        raise PermissionDenied("seule une version publiée ou l'une de vos propres révisions "
                               "peut être restaurée")
    head = editing_base(sheet, author)
    if head is not None and revision.data == head.data:
        return head
    comment = f"Restauration de la révision {revision.id}"
    return _add_revision(sheet, dict(revision.data), author, comment, head)


def publish_fields(sheet: Sheet, values: dict[str, Any], moderator: User,
                   comment: str) -> Revision:
    """Publish the approved text with `values` in place of some of its fields, as a new
    revision by `moderator` (undoing a blocked account's changes: revisions are append-only).
    The values are earlier approved text, kept as they were (no new validation)."""
    check(moderator, Capability.PUBLISH)
    approved = sheet.approved_revision
    if approved is None:
        raise Conflict("cette fiche n'a pas de version publiée")
    data, _ = complete({**approved.data, **values}, base=approved.data, strict=False)
    return _add_revision(sheet, data, moderator, comment, approved)


# --- review ---------------------------------------------------------------------------------

CHOICES = ("proposal", "published")


@dataclass
class ReviewPlan:
    """What approving `proposal` would publish. Stale when the approved revision changed since
    the proposal's start (`root`): the proposal is then merged onto it field by field."""

    proposal: Revision
    root: Revision | None  # the approved revision the proposal started from
    published: Revision | None  # the approved revision now
    merged: dict[str, Any]  # overlapping fields take the proposal's value until chosen
    conflicts: list[str] = field(default_factory=list)
    proposed: list[str] = field(default_factory=list)  # fields the proposal changes
    published_since: list[str] = field(default_factory=list)  # new since the proposal

    @property
    def stale(self) -> bool:
        return self.published is not None and (
            self.root is None or self.root.id != self.published.id)

    @property
    def published_id(self) -> int | None:
        return self.published.id if self.published else None

    @property
    def published_data(self) -> dict[str, Any]:
        return self.published.data if self.published else {}

    def resolve(self, choices: Mapping[str, str] | None) -> dict[str, Any]:
        """The data to publish, given per-field choices ("proposal" or "published") for the
        overlapping fields. Raises ReviewConflict while one is missing."""
        choices = dict(choices or {})
        for name, value in choices.items():
            if name not in FIELD_NAMES or value not in CHOICES:
                raise Invalid("choix invalide : pour chaque champ, « proposal » (la proposition) "
                              "ou « published » (la version publiée)", fields={name: value})
        missing = [f for f in self.conflicts if f not in choices]
        if missing:
            raise ReviewConflict(self, missing)
        data = dict(self.merged)
        for name in self.conflicts:
            if choices[name] == "published":
                data[name] = self.published_data.get(name)
        return data


def review_plan(revision: Revision) -> ReviewPlan:
    sheet = revision.sheet
    root = proposal_root(revision)
    published = sheet.approved_revision
    start = root.data if root is not None else empty_data()
    proposed = [f for f in FIELD_NAMES if revision.data.get(f) != start.get(f)]
    plan = ReviewPlan(revision, root, published, dict(revision.data), proposed=proposed)
    if plan.stale and published is not None:
        plan.merged, plan.conflicts = three_way_merge(start, published.data, revision.data)
        plan.published_since = [f for f in FIELD_NAMES
                                if published.data.get(f) != start.get(f)]
    return plan


def _check_pending(revision: Revision) -> None:
    if revision.status == RevisionStatus.SUPERSEDED.value:
        raise Conflict("cette proposition a été remplacée par une version plus récente de son "
                       "auteur : relisez plutôt celle-ci")
    if revision.status != RevisionStatus.PENDING.value:
        raise Conflict("cette révision a déjà été traitée")


def approve_revision(revision: Revision, moderator: User,
                     choices: Mapping[str, str] | None = None) -> Revision:
    """Approve a proposal; returns the revision now published. A proposal whose start is still
    the approved revision is published as is. A stale one is merged onto the approved revision
    (disjoint changes merge; `choices` settle overlapping fields, else ReviewConflict): the
    result is a new approved revision by the moderator, based on the proposal. A proposal of
    which the moderator kept out some text is "merged", not "approved": approved revisions are
    public, and that text was not accepted."""
    check(moderator, Capability.REVIEW)
    _check_pending(revision)
    plan = review_plan(revision)
    data = plan.resolve(choices)
    sheet = revision.sheet
    declined = any(data.get(f) != revision.data.get(f) for f in plan.conflicts)
    _settle(revision, moderator, RevisionStatus.MERGED if declined else RevisionStatus.APPROVED)
    if plan.stale and plan.published is not None and data == plan.published.data:
        return plan.published  # everything accepted is already published
    if not plan.stale or data == revision.data:
        publish(sheet, revision)
        return revision
    assert plan.published is not None
    validate(data)
    merged = Revision(
        sheet=sheet, author=moderator, data=data, base_revision_id=revision.id,
        comment=(f"Proposition n° {revision.id} fusionnée avec la version publiée "
                 f"n° {plan.published.id}")[:300],
        created_at=utcnow(), status=RevisionStatus.APPROVED.value, reviewed_by=moderator,
        reviewed_at=utcnow())
    db.session.add(merged)
    db.session.flush()
    publish(sheet, merged)
    return merged


def reject_revision(revision: Revision, moderator: User, reason: str) -> None:
    check(moderator, Capability.REVIEW)
    _check_pending(revision)
    if not reason.strip():
        raise Invalid("un motif de refus est nécessaire")
    revision.status = RevisionStatus.REJECTED.value
    revision.reviewed_by_id = moderator.id
    revision.reviewed_at = utcnow()
    revision.review_reason = reason.strip()[:2000]

