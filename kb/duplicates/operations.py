"""Writes of the duplicates domain: pairs for the queue, decisions, merge. Nothing commits here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select, update

from kb.auth.models import SYSTEM_EMAIL, User
from kb.auth.permissions import Capability, check
from kb.duplicates import index, similarity
from kb.duplicates.index import Match
from kb.duplicates.similarity import HIGH, HINT, SCAN, Fingerprint, fingerprint
from kb.errors import Conflict
from kb.extensions import db
from kb.moderation.models import Action
from kb.moderation.operations import audit
from kb.sheets import operations
from kb.sheets.fields import FIELDS, Kind
from kb.sheets.lifecycle import set_state
from kb.sheets.models import Revision, RevisionStatus, Sheet, SheetState
from kb.sheets.visibility import has_pending, latest_revision
from kb.timeutil import utcnow
from kb.transaction import mark_changed

from .models import CandidateStatus, DuplicateCandidate

REASON_MAX = 500


class MergeRefused(Conflict):
    """A merge that cannot be done; the message is French and shown as is."""


# --- while writing ---------------------------------------------------------------------------

@dataclass
class CreateCheck:
    """What the new-sheet form must show before saving, from `check_before_create`."""

    matches: list[Match]
    seen: bool  # the writer has already been shown the list (JS panel or confirmation step)
    distinct: bool  # "c'est une autre initiative" is ticked
    reason: str
    errors: list[str] = field(default_factory=list)
    # Sheets the writer was warned about while typing (static/js/similar.js), with the highest
    # score shown: the text may drift below the threshold before it is sent.
    warned: dict[int, float] = field(default_factory=dict)

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.matches) and self.matches[0].score >= HIGH

    @property
    def must_stop(self) -> bool:
        """Show the confirmation step instead of saving (never a hard block: it can be passed)."""
        return bool(self.matches) and (not self.seen or bool(self.errors))

    def __post_init__(self) -> None:
        if self.seen and self.needs_confirmation and not (self.distinct and self.reason):
            self.errors.append("Confirmez qu'il s'agit d'une autre initiative et dites en quelques "
                               "mots ce qui la distingue.")

    def pairs(self) -> dict[int, float]:
        """The pairs for moderators: close matches the writer confirmed as another initiative,
        and every sheet they were warned about at HIGH or above, at the highest score seen."""
        found: dict[int, float] = {}
        if self.needs_confirmation and self.distinct:
            found = {m.sheet_id: m.score for m in self.matches if m.score >= HIGH}
        now = {m.sheet_id: m.score for m in self.matches}
        for sheet_id, seen in self.warned.items():
            if seen >= HIGH:
                found[sheet_id] = max(seen, now.get(sheet_id, 0.0), found.get(sheet_id, 0.0))
        return found

    def record(self, sheet: Sheet, author: User) -> None:
        """Keep the writer's confirmation and warnings for moderators (a candidate pair each)."""
        pairs = self.pairs()
        if not pairs:
            return
        db.session.flush()  # the new sheet gets its id
        confirmed = self.needs_confirmation and self.distinct
        for other_id, score in pairs.items():
            # "create": the writer said it is another initiative; "warned": they were shown
            # the sheet while typing and said nothing (the text drifted under the threshold).
            add_candidate(sheet.id, other_id, score, "create" if confirmed else "warned",
                          reason=self.reason if self.distinct else "", user=author)


WARNED_MAX = 10  # sheets a form may say it was warned about


def read_warned(value: str, data: Mapping[str, Any]) -> dict[int, float]:
    """The form's `duplicates_warned` ("slug=0.62;slug=0.45"): published sheets and the highest
    score the writer was shown. A claim is kept only for a sheet that the text sent still looks
    like (HINT): a form cannot queue pairs with unrelated sheets."""
    claims: dict[str, float] = {}
    for part in str(value or "")[:4000].split(";")[:WARNED_MAX]:
        slug, _, number = part.partition("=")
        try:
            score = float(number)
        except ValueError:
            continue
        if slug.strip() and 0 < score <= 1:
            claims[slug.strip()[:200]] = max(score, claims.get(slug.strip()[:200], 0.0))
    if not claims or not str(data.get("title") or "").strip():
        return {}
    ids: dict[str, int] = {slug: sheet_id for slug, sheet_id in db.session.execute(
        select(Sheet.slug, Sheet.id).where(
            Sheet.slug.in_(list(claims)), Sheet.state == SheetState.ACTIVE.value,
            Sheet.approved_revision_id.is_not(None)))}
    still_alike = {sheet_id for sheet_id, _ in
                   index.scored(fingerprint(data), ids.values(), min_score=HINT)}
    return {sheet_id: claims[slug] for slug, sheet_id in ids.items() if sheet_id in still_alike}


def check_before_create(data: Mapping[str, Any], answers: Mapping[str, Any]) -> CreateCheck:
    """Sheets like the one being written; `answers` are the form's duplicate fields."""
    # No title yet: the sheet is invalid anyway, let validation speak first.
    matches = index.similar(fingerprint(data), limit=5, min_score=HINT) \
        if str(data.get("title") or "").strip() else []
    return CreateCheck(
        matches=matches,
        seen=str(answers.get("duplicates_seen", "")) == "1",
        distinct=str(answers.get("distinct", "")) in ("1", "y", "on", "true"),
        reason=" ".join(str(answers.get("distinct_reason", "")).split())[:REASON_MAX],
        warned=read_warned(str(answers.get("duplicates_warned", "")), data),
    )


# --- the queue ------------------------------------------------------------------------------

def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def find_candidate(a: int, b: int) -> DuplicateCandidate | None:
    first, second = _pair(a, b)
    return db.session.scalar(select(DuplicateCandidate).where(
        DuplicateCandidate.sheet_a_id == first, DuplicateCandidate.sheet_b_id == second))


def add_candidate(a: int, b: int, score: float, source: str, reason: str = "",
                  user: User | None = None) -> DuplicateCandidate | None:
    """Queue a pair unless it is already known; a decided pair is never proposed again."""
    if a == b:
        return None
    existing = find_candidate(a, b)
    if existing is not None:
        if existing.status == CandidateStatus.OPEN:
            if reason and not existing.reason:
                existing.reason = reason
            existing.score = max(existing.score, score)  # the highest seen
        return None
    first, second = _pair(a, b)
    candidate = DuplicateCandidate(sheet_a_id=first, sheet_b_id=second, score=score,
                                   source=source, reason=reason,
                                   created_by_id=user.id if user else None,
                                   status=CandidateStatus.OPEN.value, created_at=utcnow())
    db.session.add(candidate)
    return candidate


def known_pairs() -> set[tuple[int, int]]:
    return {(a, b) for a, b in db.session.execute(
        select(DuplicateCandidate.sheet_a_id, DuplicateCandidate.sheet_b_id))}


def add_scanned(pairs: Iterable[tuple[int, int, float]], known: set[tuple[int, int]]) -> int:
    """Queue scan results not seen before; returns how many are new."""
    new = 0
    for a, b, score in pairs:
        if _pair(a, b) in known:
            continue
        known.add(_pair(a, b))
        first, second = _pair(a, b)
        db.session.add(DuplicateCandidate(sheet_a_id=first, sheet_b_id=second, score=score,
                                          source="scan", status=CandidateStatus.OPEN.value,
                                          created_at=utcnow()))
        new += 1
    return new


def not_duplicate(candidate: DuplicateCandidate, moderator: User) -> None:
    check(moderator, Capability.MODERATE)
    candidate.status = CandidateStatus.NOT_DUPLICATE.value
    candidate.decided_by_id = moderator.id
    candidate.decided_at = utcnow()
    audit(moderator, Action.NOT_DUPLICATE, sheet=candidate.sheet_a, score=candidate.score,
          other_id=candidate.sheet_b_id, other_slug=candidate.sheet_b.slug,
          other_title=candidate.sheet_b.title or candidate.sheet_b.slug)


def scan_sheets(sheet_ids: Iterable[int], min_score: float = SCAN) -> int:
    """Queue the pairs these published sheets form with any other (the scan, for a few sheets:
    run after each publication). Open pairs get their score recomputed on the current texts, so
    that the queue shows the score of what the sheets say now (but a pair its writer was warned
    about: the highest score shown). Returns how many pairs are new."""
    new = 0
    for sheet_id, fp in index.load(sheet_ids).items():
        for match in index.similar(fp, limit=10, min_score=min_score, exclude=[sheet_id]):
            existing = find_candidate(sheet_id, match.sheet_id)
            if existing is None:
                new += add_candidate(sheet_id, match.sheet_id, match.score, "scan") is not None
            elif existing.status == CandidateStatus.OPEN.value:
                # A pair the writer was warned about keeps the highest score they were shown.
                existing.score = max(existing.score, match.score) \
                    if existing.source == "warned" else match.score
    return new


def similar_published(revision: Revision, limit: int = 5) -> list[Match]:
    """Published sheets like `revision` (the review page): the moderator sees them whether or
    not the writer was warned."""
    return index.similar(fingerprint(revision.data), limit=limit, min_score=HINT,
                         exclude=[revision.sheet_id])


def open_pairs_with(sheet: Sheet) -> list[DuplicateCandidate]:
    """Open pairs involving `sheet`, closest first: what a moderator must see before approving
    it (the writer's "c'est une autre initiative" and their reason, or a scan's finding)."""
    if sheet.id is None:
        return []
    return list(db.session.scalars(
        select(DuplicateCandidate)
        .where(DuplicateCandidate.status == CandidateStatus.OPEN.value,
               or_(DuplicateCandidate.sheet_a_id == sheet.id,
                   DuplicateCandidate.sheet_b_id == sheet.id))
        .order_by(DuplicateCandidate.score.desc(), DuplicateCandidate.id)))


def manual_pair(a: Sheet, b: Sheet, moderator: User) -> DuplicateCandidate:
    """A pair a moderator wants to compare (spotted while reading): queued with its score."""
    check(moderator, Capability.MODERATE)
    if a.id == b.id:
        raise MergeRefused("Choisissez deux fiches différentes.")
    existing = find_candidate(a.id, b.id)
    if existing is not None:
        return existing
    # A moderator sees every revision: a never-approved sheet is compared by its latest one.
    revisions = [sheet.approved_revision or latest_revision(sheet) for sheet in (a, b)]
    if revisions[0] is None or revisions[1] is None:
        raise MergeRefused("Une des deux fiches n'a aucune version à comparer.")
    value = similarity.score(Fingerprint.of(revisions[0].data), Fingerprint.of(revisions[1].data))
    candidate = add_candidate(a.id, b.id, value, "manual", user=moderator)
    assert candidate is not None
    return candidate


# --- merge ----------------------------------------------------------------------------------

def merged_data(survivor: dict[str, Any], other: dict[str, Any],
                choices: Mapping[str, str]) -> dict[str, Any]:
    """Field by field: the survivor's value unless `choices[name] == "other"`; lists are united."""
    data: dict[str, Any] = {}
    for f in FIELDS:
        mine, theirs = survivor.get(f.name, f.empty()), other.get(f.name, f.empty())
        if f.kind is Kind.LIST:
            seen = {str(v).casefold() for v in mine}
            data[f.name] = [*mine, *(v for v in theirs if str(v).casefold() not in seen)]
        elif choices.get(f.name) == "other":
            data[f.name] = theirs
        else:
            data[f.name] = mine
    return data


@dataclass
class MergeResult:
    survivor: Sheet
    merged: Sheet
    revision: Revision
    recipients: list[str]  # contributors of both sheets, to be told after commit


def _check_mergeable(sheet: Sheet, absorbed: bool) -> Revision:
    if sheet.state == SheetState.MERGED:
        raise MergeRefused(f"« {sheet.title or sheet.slug} » a déjà été fusionnée.")
    if sheet.approved_revision is None:
        raise MergeRefused(f"« {sheet.slug} » n'a pas encore de version publiée : "
                           "approuvez-la ou refusez-la d'abord.")
    # The merge reads approved texts only; proposals on the survivor stay pending (merged at
    # review time), but those on the absorbed sheet would be left on a sheet that redirects.
    if absorbed and has_pending(sheet):
        raise MergeRefused(f"« {sheet.title} » a une modification en attente : "
                           "traitez-la avant de fusionner.")
    return sheet.approved_revision


def contributors(*sheets: Sheet) -> list[str]:
    emails = db.session.scalars(
        select(User.email).join(Revision, Revision.author_id == User.id)
        .where(Revision.sheet_id.in_([s.id for s in sheets]), User.email != SYSTEM_EMAIL)
        .distinct()
    ).all()
    return sorted(set(emails))


def merge(survivor: Sheet, other: Sheet, choices: Mapping[str, str], moderator: User,
          comment: str = "") -> MergeResult:
    """Merge `other` into `survivor`: a new approved revision of the survivor with the chosen
    fields (tags and partners united), `other` becomes "merged" and redirects to it."""
    check(moderator, Capability.MODERATE)
    if survivor.id == other.id:
        raise MergeRefused("Choisissez deux fiches différentes.")
    kept, absorbed = _check_mergeable(survivor, False), _check_mergeable(other, True)
    recipients = [e for e in contributors(survivor, other) if e != moderator.email]
    data = merged_data(kept.data, absorbed.data, choices)
    note = f"Fusion de « {other.title} » ({other.slug})" + (f" : {comment}" if comment else "")
    revision = operations.edit_sheet(survivor, data, moderator, kept.id, note[:300])
    if revision.status == RevisionStatus.PENDING.value:
        operations.approve_revision(revision, moderator)
    set_state(other, SheetState.MERGED, moderator, note)
    other.merged_into_id = survivor.id
    other.updated_at = utcnow()
    # Sheets merged into `other` earlier now point straight at the survivor (no redirect chains).
    db.session.execute(update(Sheet).where(Sheet.merged_into_id == other.id)
                       .values(merged_into_id=survivor.id))
    pair = find_candidate(survivor.id, other.id)
    if pair is None:
        pair = add_candidate(survivor.id, other.id, 1.0, "merge", user=moderator)
    assert pair is not None
    pair.status = CandidateStatus.MERGED.value
    pair.decided_by_id = moderator.id
    pair.decided_at = utcnow()
    # Other open pairs with the absorbed sheet are moot: it no longer exists on its own.
    db.session.execute(
        update(DuplicateCandidate)
        .where(DuplicateCandidate.status == CandidateStatus.OPEN.value,
               or_(DuplicateCandidate.sheet_a_id == other.id,
                   DuplicateCandidate.sheet_b_id == other.id))
        .values(status=CandidateStatus.MERGED.value, decided_by_id=moderator.id,
                decided_at=utcnow()))
    mark_changed([survivor.id, other.id])
    # The journal says who merged what into what, like every other moderation decision.
    db.session.flush()  # the survivor's new revision gets its id
    audit(moderator, Action.MERGE, sheet=survivor, revision=revision, reason=comment,
          merged_id=other.id, merged_slug=other.slug, merged_title=other.title or other.slug)
    return MergeResult(survivor, other, revision, recipients)


# --- import ---------------------------------------------------------------------------------

def import_match(data: Mapping[str, Any], upto: int | None = None) -> Match | None:
    """The published sheet an imported one duplicates (score at least HIGH), if any; with
    `upto`, among the sheets that existed when the import started (ids up to it)."""
    matches = index.similar(Fingerprint.of(data), limit=1, min_score=HIGH, upto=upto)
    return matches[0] if matches else None


def record_import_pair(sheet: Sheet, match: Match, author: User, reason: str = "") -> None:
    db.session.flush()
    add_candidate(sheet.id, match.sheet_id, match.score, "import",
                  reason=reason or "Import : la source la déclare distincte d'une fiche "
                                   "existante.",
                  user=author)
