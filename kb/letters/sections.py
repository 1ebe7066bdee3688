"""What goes in a person's letter: the sections read from the domains that own them, each
capped at CAP items plus "et N autres" (a link to the full list), and the same sheet never
listed twice in one letter. Pure reads, except the single-use confirmation tokens the freshness
links need (kb/freshness issues them, as its digest did)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from kb.auth.models import User
from kb.auth.preferences import LETTER_SECTIONS
from kb.availability import operations as availability
from kb.duplicates.models import CandidateStatus, DuplicateCandidate
from kb.extensions import db
from kb.follows.operations import SearchCache, unfollow_url, updates_for
from kb.freshness import operations as freshness
from kb.freshness.operations import FreshnessItem, confirm_url, due_sheets, issue_token
from kb.letters import schedule
from kb.moderation import queries
from kb.moderation.models import Report, ReportReason
from kb.moderation.queries import reachable_contributors
from kb.questions.models import Question
from kb.questions.operations import answer_url
from kb.sheets.models import Sheet
from kb.wording import french_datetime, plural

CAP = 5
SOON = timedelta(days=30)  # a sheet enters its owner's letter up to 30 days before it falls due


@dataclass(frozen=True)
class Item:
    title: str
    url: str
    detail: str = ""
    actions: tuple[tuple[str, str], ...] = ()  # (French label, absolute URL) one click each
    sheet_id: int | None = None  # a sheet listed once per letter; None: not about one sheet


@dataclass
class Section:
    key: str
    more_url: str  # the full list, for "et N autres"
    items: list[Item] = field(default_factory=list)

    @property
    def title(self) -> str:
        return LETTER_SECTIONS[self.key]

    @property
    def shown(self) -> list[Item]:
        return self.items[:CAP]

    @property
    def more(self) -> int:
        return max(0, len(self.items) - CAP)


def _base() -> str:
    return str(current_app.config["KB_BASE_URL"])


def _sheet_url(slug: str) -> str:
    return f"{_base()}/fiches/{slug}"


# --- freshness: the two functions the freshness engine's own replace at merge -----------------

# Reads shared by every letter of one run (`one_run()`, opened by build_letters): the due sheets
# and their teams are read once, not once per person. Ids only: each person's commit expires
# the ORM objects.
_RUN: ContextVar[dict[str, Any] | None] = ContextVar("kb_letters_run", default=None)


@contextmanager
def one_run() -> Iterator[None]:
    token = _RUN.set({})
    try:
        yield
    finally:
        _RUN.reset(token)


def _memo(key: str, compute: Callable[[], Any]) -> Any:
    cache = _RUN.get()
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def _owned_due(now: datetime) -> dict[int, list[tuple[int, int | None]]]:
    """Per person, (sheet id, open "outdated" report id or None) of the published sheets they
    wrote that fall due within SOON or were reported outdated."""
    sheets = due_sheets(now + SOON)
    # Open "outdated" reports: the letter links to the report page (contributors may read it
    # there), never quotes the reader's comment.
    reports: dict[int, Report] = {}
    for report in db.session.scalars(select(Report).where(
            Report.reason == ReportReason.OUTDATED.value, Report.closed_at.is_(None))
            .order_by(Report.created_at.desc())):
        reports.setdefault(report.sheet_id, report)
    sheets += [r.sheet for r in reports.values() if r.sheet.is_published and r.sheet not in sheets]
    teams = reachable_contributors(s.id for s in sheets)
    owned: dict[int, list[tuple[int, int | None]]] = {}
    for sheet in sheets:
        report_id = reports[sheet.id].id if sheet.id in reports else None
        for member in teams.get(sheet.id, []):
            owned.setdefault(member.id, []).append((sheet.id, report_id))
    return owned


def owner_items(user: User, now: datetime) -> list[FreshnessItem]:
    """Sheets this person should confirm (kb.freshness: coming due, due, late, escalated to
    them), then the sheets of theirs that a reader reported as outdated."""
    # Announced in the last letter before it falls due, even 35 days ahead (kb.freshness).
    items = freshness.letter_items_for_owner(
        user, now, schedule.next_start(user.letter_period, user.letter_weekday, now))
    listed = {item.sheet_id for item in items}
    return items + [item for item in _reported_items(user, now) if item.sheet_id not in listed]


def _reported_items(user: User, now: datetime) -> list[FreshnessItem]:
    items = []
    for sheet_id, report_id in _memo(f"owned:{now}", lambda: _owned_due(now)).get(user.id, []):
        sheet = db.session.get(Sheet, sheet_id)
        if sheet is None or not report_id:
            continue
        due = sheet.review_due_at
        state = "en retard" if due + SOON <= now else "à vérifier" \
            if due <= now or report_id else "bientôt"
        url = _sheet_url(sheet.slug)
        actions = [("Toujours juste : confirmer", confirm_url(issue_token(sheet, user, now))),
                   ("Quelque chose a changé : modifier", f"{url}/modifier")]
        if report_id:
            actions.append(("Lire le signalement", f"{url}/signalements/{report_id}"))
        items.append(FreshnessItem(sheet.id, sheet.title, url, state, tuple(actions)))
    return items


def moderator_items(user: User, now: datetime) -> list[FreshnessItem]:
    """Overdue sheets escalated to the moderators (kb.freshness)."""
    return freshness.letter_items_for_moderator(user, now)


def note_reminded(sheet_ids: Iterable[int], now: datetime) -> None:
    """Escalation counts the letters that listed a sheet (kb.freshness)."""
    freshness.note_reminded(sheet_ids, now)


# --- the sections ---------------------------------------------------------------------------

def _freshness_item(item: FreshnessItem) -> Item:
    return Item(item.title, item.url, item.state, item.actions, item.sheet_id)


def _with_availability(item: Item, user: User, now: datetime) -> Item:
    """A sheet of the person's team also gets its availability in one click (kb/availability:
    signed links; the page they open applies it on POST)."""
    sheet = db.session.get(Sheet, item.sheet_id) if item.sheet_id is not None else None
    if sheet is None or not availability.may_update(sheet, user):
        return item
    return replace(item, actions=item.actions + availability.letter_actions(sheet, user, now))


def verify_section(user: User, now: datetime) -> Section:
    return Section("verifier", f"{_base()}/compte#contributions",
                   [_with_availability(_freshness_item(i), user, now)
                    for i in owner_items(user, now)])


def follows_section(user: User, since: datetime, cache: SearchCache | None = None) -> Section:
    items = [Item(u.sheet.title, _sheet_url(u.sheet.slug),
                  ("nouvelle" if u.new else "mise à jour") + f" — suivi : {u.follow.label}",
                  ((f"Ne plus suivre ({u.follow.label})", unfollow_url(u.follow)),), u.sheet.id)
             for u in updates_for(user, since, cache)]
    return Section("suivis", f"{_base()}/mes-suivis", items)


def questions_section(user: User, waiting: dict[int, list[Question]]) -> Section:
    items = []
    for question in waiting.get(user.id, []):
        text = " ".join(question.question.split())
        excerpt = text if len(text) <= 120 else text[:119].rstrip() + "…"
        # A question is its own item (sheet_id None): two questions on one sheet both need
        # an answer, and a due sheet with a question is listed for both reasons.
        items.append(Item(f"« {excerpt} »", _sheet_url(question.sheet.slug),
                          f"sur « {question.sheet.title} », posée le "
                          f"{question.created_at:%d/%m/%Y}",
                          (("Répondre", answer_url(question)),)))
    return Section("questions", f"{_base()}/compte#contributions", items)


@dataclass
class ModerationWork:
    """What waits for every moderator, read once per run (the former daily digest's content)."""

    items: list[Item]


def moderation_work() -> ModerationWork:

    base = _base()
    items = [Item(rev.title, f"{base}/moderation/revisions/{rev.id}",
                  ("nouvelle fiche" if queries.is_new_sheet(rev) else "modification")
                  + f" à relire, proposée le {rev.created_at:%d/%m/%Y}",
                  (("Relire", f"{base}/moderation/revisions/{rev.id}"),), rev.sheet_id)
             for rev in queries.pending_revisions(limit=50)]
    items += [Item(report.sheet.title, _sheet_url(report.sheet.slug),
                   f"signalée le {report.created_at:%d/%m/%Y}",
                   (("Voir les signalements", f"{base}/moderation/signalements"),), report.sheet_id)
              for report in queries.open_reports()]
    for pair in db.session.scalars(select(DuplicateCandidate).where(
            DuplicateCandidate.status == CandidateStatus.OPEN.value)
            .order_by(DuplicateCandidate.score.desc()).limit(50)):
        a, b = db.session.get(Sheet, pair.sheet_a_id), db.session.get(Sheet, pair.sheet_b_id)
        if a is not None and b is not None:
            items.append(Item(a.title, _sheet_url(a.slug), f"doublon possible de « {b.title} »",
                              (("Comparer", f"{base}/moderation/doublons"),), a.id))
    return ModerationWork(items)


def moderation_section(user: User, now: datetime, work: ModerationWork) -> Section:
    # Overdue sheets first: nobody else answered four letters about them, they are done in one
    # click from the letter, and after them the letter shows no more of them (the queue,
    # reports and duplicates each have their page behind "et N autres"). Listed after the
    # queue, they stayed hidden behind the cap whenever 5 duplicates were open.
    items = [_freshness_item(i) for i in moderator_items(user, now)] + list(work.items)
    return Section("moderation", f"{_base()}/moderation", items)


# --- visits: the hosts' alerts at 50/80/100 % of capacity (issue 22), not one mail each ------

FILL_STEPS = (100, 80, 50)


def visits_section(user: User, now: datetime) -> Section:
    """The upcoming slots this person hosts (kb.visits.operations.hosts_of) whose seats are at
    least half taken, with the step reached, registrants, capacity and minimum. Slots, not
    sheets: never dropped as a repeat of a sheet listed above."""
    from kb.visits import operations as visits

    def filling() -> list[tuple[int, list[int]]]:  # (slot id, host ids), read once per run
        return [(slot.id, [u.id for u in visits.hosts_of(slot)])
                for slot in visits.filling_slots(now, min(FILL_STEPS))]

    base = _base()
    items = []
    for slot_id, host_ids in _memo("visits_filling", filling):
        if user.id not in host_ids:
            continue
        slot = db.session.get(visits.VisitSlot, slot_id)
        if slot is None:
            continue
        percent = 100 * slot.seats_taken // slot.capacity
        step = next(s for s in FILL_STEPS if percent >= s)
        waiting = len(visits.registrations(slot, (visits.RegistrationStatus.WAITLISTED.value,)))
        detail = ("complet" if step == 100 else f"{step} % des places prises") + (
            f" : {plural(slot.seats_taken, 'inscrit')} sur {plural(slot.capacity, 'place')}, "
            f"minimum {slot.min_participants} "
            + ("atteint" if slot.seats_taken >= slot.min_participants else "pas encore atteint"))
        if waiting:
            detail += f", {waiting} en liste d'attente"
        items.append(Item(
            f"{slot.sheet.title} — {slot.format_label.lower()} du {french_datetime(slot.starts_at)}",
            f"{base}/visites/{slot.id}/inscrits", detail,
            (("Voir les inscrits", f"{base}/visites/{slot.id}/inscrits"),
             ("Modifier le créneau", f"{base}/visites/{slot.id}/modifier"))))
    return Section("visites", f"{base}/visites", items)


def without_repeats(sections: list[Section]) -> list[Section]:
    """The same sheet once per letter: in the first section that lists it, in letter order;
    sections left empty are dropped."""
    seen: set[int] = set()
    kept = []
    for section in sections:
        items = []
        for item in section.items:
            if item.sheet_id is not None:
                if item.sheet_id in seen:
                    continue
                seen.add(item.sheet_id)
            items.append(item)
        section.items = items
        if items:
            kept.append(section)
    return kept
