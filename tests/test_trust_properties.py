"""Issue 9, the proof: a stateful property test of the trust model, through real HTTP responses.

Five actors (anonymous, two contributors, a trusted contributor, a moderator) create, edit (any
`base_revision`, other people's and unknown ones included), approve, reject, restore, report,
hide, archive and merge sheets on a real app and database. Every text they write carries a unique
marker (tests/trust_model.py). After every step the responses the actors actually get are checked
against the intended model, written down in tests/trust_model.py and independent of the code:

1. every marker an anonymous reader sees was in a revision a moderator explicitly approved (or
   restored), or was written by a trusted contributor or a moderator themselves;
2. no response to anyone contains a marker of a revision they may not see (anyone sees approved
   revisions, an author their own, moderators everything); the 409 answers of the edit rules
   included; a write succeeds only where the same actor's read was allowed;
3. no accepted change is lost: it is in the approved text, or a later accepted change was made
   knowing it (its writer started from it, or a merge chose the other side);
4. an account is trusted (publishes without review) only if it meets the rule (issue 20):
   approvals by a moderator, one per decision, on at least three sheets, an account older than
   the standing period. The newcomer replaces his own proposals again and again: each one is
   "remplacée", and the approval of the last one counts once.

Structures (issue 24): two more actors edit and restore, a member of a verified structure and a
member of an unverified one; a moderator links sheets to either structure. Invariant 1 then
admits, besides the above, only the verified member's own text on a sheet carried by the
verified structure when written: the unverified member's text, and the verified member's on
other sheets, wait for a moderator like anyone's.

Profiles (KB_PROPERTY_PROFILE): "ci" (default, `make test`: bounded and derandomized) and "deep"
(`make test-deep`: many more and longer examples; KB_PROPERTY_EXAMPLES overrides the count).
Runs on SQLite, and on PostgreSQL when KB_TEST_DATABASE_URL is set (tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from kb import create_app
from kb.auth.operations import create_user
from kb.extensions import db
from kb.models import User
from kb.sheets.models import Revision, Sheet
from kb.structures.models import JoinedVia, MemberRole, Membership, MemberState, Structure
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.conftest import PASSWORD, token_for
from tests.trust_model import (
    AcceptedChangeLost,
    AcceptedOnMergedSheet,
    DraftShownInConflictAnswer,
    DraftShownToOtherUser,
    Ledger,
    PermissionBypass,
    PublishedByModeratorSave,
    PublishedByTrustedSave,
    ReplacedProposalNotSuperseded,
    SearchMatchesUnreviewedText,
    ServerError,
    TrustGrantedAgainstRule,
    TrustViolation,
    UnreviewedTextPublished,
    UnreviewedTitleInSlug,
    Write,
    WriteWithoutRead,
    form_values,
    markers_in,
)

# --- profiles ------------------------------------------------------------------------------

_COMMON: dict[str, Any] = {
    "deadline": None,
    "print_blob": True,  # a failure prints @reproduce_failure(...) to replay it exactly
    "suppress_health_check": list(HealthCheck),
    "report_multiple_bugs": True,  # one minimal example per kind of violation
}
PROFILES = {
    "ci": settings(max_examples=25, stateful_step_count=10, derandomize=True, database=None,
                   **_COMMON),
    "deep": settings(max_examples=int(os.environ.get("KB_PROPERTY_EXAMPLES", "400")),
                     stateful_step_count=25, **_COMMON),
}
PROFILE = os.environ.get("KB_PROPERTY_PROFILE", "ci")

# --- actors and texts ----------------------------------------------------------------------

ANON, C1, C2, TRUSTED, MOD = "anon", "c1", "c2", "trusted", "mod"
# A newcomer (registered today) who replaces his own pending proposal again and again (issue 20).
NEWBIE = "newbie"
LOGGED_IN = (C1, C2, TRUSTED, MOD, NEWBIE)
# Members of a verified structure (its sheets: published at once) and of an unverified one.
MEMBER_V, MEMBER_U = "member_v", "member_u"
MEMBERS = (MEMBER_V, MEMBER_U)
EDITORS = (*LOGGED_IN, *MEMBERS)
# The automatic trust rule as the model knows it (KB_AUTO_APPROVE_AFTER of the app below, and
# the three sheets of kb.moderation.standing): C1's account is old enough, NEWBIE's is not.
AUTO_TRUST_AFTER, AUTO_TRUST_SHEETS = 2, 3
# Moderators may see everything: their answers cannot break the rules, they are not read. The
# trusted contributor reads like any contributor (their own text is published at once): only the
# deep profile spends requests on it.
READERS = (ANON, C1, C2, TRUSTED) if PROFILE == "deep" else (ANON, C1, C2)
# After each step that changed something, the deep profile reads every page of the changed
# sheets and every public listing; the ci one the main ones and one of the others, in turn
# (TrustMachine.some, TrustMachine.sheet_pages).
FULL_SWEEP = PROFILE == "deep"
# The outputs built from the published sheets, read by the anonymous reader (first: always).
PUBLIC_LISTINGS = ("/donnees/fiches.jsonl", "/", "/donnees/flux/modifications.atom", "/fiches",
                   "/donnees/fiches.csv", "/recherche", "/donnees/flux/nouvelles-fiches.atom",
                   "/embed/list", "/sitemap.xml", "/api/v1/sheets?per_page=100")
# Who tries a moderator's action: mostly the moderator, sometimes someone who may not.
MODERATION_ACTORS = st.sampled_from((MOD, MOD, MOD, C1, TRUSTED))

LONG = {"context", "stakes", "convictions", "method", "results", "contacts", "further_reading"}
MARKED_FIELDS = ("title", "summary", "context", "stakes", "convictions", "method", "results",
                 "contacts", "actor_name", "sheet_author", "city", "tags", "partners", "website",
                 "further_reading")
LIST_FIELDS = {"tags", "partners"}
# Edits draw from a few fields so that two edits of one sheet often overlap (conflicts, merges).
EDIT_FIELDS = ("title", "summary", "contacts", "context", "tags")
PLAIN = {"actor_type": "commune", "scale": "commune", "department": "29"}
REASON = "Motif de la décision."


def field_value(name: str, m: str) -> Any:
    if name == "title":
        return f"Initiative {m}"
    if name == "tags":
        return [f"theme {m}"]
    if name == "partners":
        return [f"Partenaire {m}"]
    if name == "website":
        return f"https://example.org/{m}"
    if name == "contacts":
        return f"Claire, tél. 06 12 34 56 78, {m}"
    if name in LONG:
        return f"Un texte **{m}** ici."
    return f"Texte {m}"


def as_form(value: Any) -> str:
    return "\n".join(value) if isinstance(value, list) else str(value)


# --- the database between examples ----------------------------------------------------------

@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """SQLite file and search indexes in memory when the machine has /dev/shm: thousands of
    commits, each an fsync on disk."""
    shm = Path("/dev/shm")
    path = Path(tempfile.mkdtemp(prefix="kb-trust-", dir=shm)) if shm.is_dir() else tmp_path
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def trust_app(app_config: dict[str, Any], pg_database: str | None, workdir: Path
              ) -> Iterator[Flask]:
    """A real app, no app context kept pushed: each request gets its own context and session."""
    # Automatic trust on, with a low count: the model follows who may become trusted.
    config = {**app_config, "KB_AUTO_APPROVE_AFTER": AUTO_TRUST_AFTER, "KB_STANDING_DAYS": 3}
    if pg_database is None:
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{workdir / 'kb.sqlite3'}"
    app = create_app(config)
    with app.app_context():
        if pg_database is None:
            db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def empty_database(app: Flask, index_dir: Path) -> None:
    """Every table emptied (cheaper than a new database), a new search index directory."""
    with app.app_context():
        db.session.remove()
        tables = db.metadata.sorted_tables
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables)
                                  + " RESTART IDENTITY CASCADE"))
            else:
                conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # sheets <-> revisions
                for table in reversed(tables):
                    conn.execute(table.delete())
    app.config["KB_INDEX_DIR"] = str(index_dir)
    app.extensions.pop("kb_search", None)  # built again on the new directory


# --- what the machine reads of the database -------------------------------------------------

@dataclass(frozen=True)
class SheetRow:
    id: int
    slug: str
    state: str
    approved_revision_id: int | None


@dataclass(frozen=True)
class RevisionRow:
    id: int
    sheet_id: int
    author_id: int
    status: str
    base_id: int | None
    data: dict[str, Any]
    comment: str

    @property
    def markers(self) -> set[str]:
        return markers_in(self.data) | markers_in(self.comment)

    def field_markers(self, name: str) -> set[str]:
        return markers_in(self.data.get(name))


@dataclass
class World:
    sheets: dict[int, SheetRow]
    revisions: dict[int, RevisionRow]
    trusted: frozenset[int] = frozenset()  # ids of the accounts marked trusted

    def approved_markers(self) -> set[str]:
        found: set[str] = set()
        for revision in self.revisions.values():
            if revision.status == "approved":
                found |= revision.markers
        return found

    def sheet_by_slug(self, slug: str) -> SheetRow | None:
        return next((s for s in self.sheets.values() if s.slug == slug), None)

    def revision_ids(self) -> list[int]:
        return sorted(self.revisions)

    def sheet_list(self) -> list[SheetRow]:
        return [self.sheets[i] for i in sorted(self.sheets)]


def read_world(app: Flask) -> World:
    with app.app_context():
        sheets = {s.id: SheetRow(s.id, s.slug, s.state, s.approved_revision_id)
                  for s in db.session.scalars(select(Sheet))}
        revisions = {r.id: RevisionRow(r.id, r.sheet_id, r.author_id, r.status,
                                       r.base_revision_id, dict(r.data), r.comment or "")
                     for r in db.session.scalars(select(Revision))}
        trusted = frozenset(db.session.scalars(select(User.id).where(User.trusted.is_(True))))
        db.session.remove()
    return World(sheets, revisions, trusted)


# --- the machine ----------------------------------------------------------------------------

def build_machine(app: Flask, workdir: Path) -> type[RuleBasedStateMachine]:
    class TrustMachine(RuleBasedStateMachine):
        stats = {"examples": 0, "steps": 0, "requests": 0}

        def __init__(self) -> None:
            super().__init__()
            self.stats["examples"] += 1
            empty_database(app, workdir / f"index-{self.stats['examples']}")
            self.ledger = Ledger()
            self.steps: list[str] = []
            self.users: dict[str, int] = {}
            self.tokens: dict[str, dict[str, str]] = {ANON: {}}
            self.clients: dict[str, FlaskClient] = {ANON: app.test_client()}
            with app.app_context():
                # C2's address is not confirmed although a moderator marked it trusted (issue
                # 10): it must read and write exactly like the other untrusted contributor.
                for actor, role, trusted, confirmed in ((C1, "contributor", False, True),
                                                        (C2, "contributor", True, False),
                                                        (TRUSTED, "contributor", True, True),
                                                        (MOD, "moderator", False, True),
                                                        (NEWBIE, "contributor", False, True),
                                                        (MEMBER_V, "contributor", False, True),
                                                        (MEMBER_U, "contributor", False, True)):
                    user = create_user(f"{actor}@example.org", PASSWORD, role, actor.upper(),
                                       confirmed=confirmed)
                    user.trusted = trusted
                    if actor == C1:  # old enough for automatic trust; NEWBIE registers today
                        user.created_at -= timedelta(days=30)
                    commit()
                    self.users[actor] = user.id
                    self.tokens[actor] = {"Authorization": f"Bearer {token_for(user)}"}
                    commit()
                self.structures: dict[str, int] = {}
                for actor, verified in ((MEMBER_V, True), (MEMBER_U, False)):
                    structure = Structure(name=f"Structure {actor}",
                                          verified_at=utcnow() if verified else None)
                    db.session.add(structure)
                    db.session.add(Membership(
                        structure=structure, user_id=self.users[actor], role=MemberRole.MEMBER,
                        state=MemberState.ACTIVE, joined_via=JoinedVia.MODERATOR))
                    commit()
                    self.structures[actor] = structure.id
                db.session.remove()
            for actor in EDITORS:
                client = app.test_client()
                with client.session_transaction() as session:
                    session["_user_id"] = f"{self.users[actor]}:0"  # User.get_id()
                    session["_fresh"] = True
                self.clients[actor] = client
            self.actor_of = {uid: actor for actor, uid in self.users.items()}
            self.world = read_world(app)
            self.before = self.world
            self.step_markers: set[str] = set()
            self.ever_approved: set[str] = set()
            # Automatic trust: the sheets of each moderator's approval of an actor's proposal
            # (one entry per decision), the actors promoted, the markers they wrote since.
            self.approvals: dict[str, list[int]] = {}
            self.promoted: set[str] = set()
            self.promoted_markers: set[str] = set()
            # Sheet id -> the structure (its member actor) a moderator linked it to; the
            # verified member's text written on the verified structure's sheets.
            self.carried_by: dict[int, str] = {}
            self.member_markers: set[str] = set()

        # --- helpers: requests, the step log, the model's sets ------------------------------

        def request(self, actor: str, method: str, url: str, **kwargs: Any) -> TestResponse:
            if url.startswith("/api/"):
                kwargs.setdefault("headers", {}).update(self.tokens[actor])
            self.stats["requests"] += 1
            response = self.clients[actor].open(url, method=method, **kwargs)
            if response.status_code >= 500:
                self.fail(ServerError, f"{actor} {method} {url} -> {response.status_code}")
            return response

        def fail(self, kind: type[TrustViolation], message: str) -> None:
            steps = "\n".join(f"  {i + 1}. {s}" for i, s in enumerate(self.steps))
            raise kind(f"{message}\nSteps of this example:\n{steps}")

        def new_marker(self, actor: str) -> str:
            m = self.ledger.new_marker(actor)
            self.step_markers.add(m)
            if actor in self.promoted:
                self.promoted_markers.add(m)  # published at once, as a trusted contributor's
            return m

        def visible_to(self, actor: str) -> set[str] | None:
            """Markers `actor` may see (None: all). Report comments: their writer and moderators."""
            if actor == MOD:
                return None
            return self.ever_approved | self.ledger.written_by([actor])

        def publishable(self) -> set[str]:
            """Invariant 1: what an anonymous reader may see."""
            return self.ledger.written_by([TRUSTED, MOD]) | self.ledger.endorsed \
                | self.promoted_markers | self.member_markers

        def member_wrote(self, actor: str, sheet_id: int) -> None:
            """The verified member's own text on the verified structure's sheet may be
            published at once: what this step wrote, and their earlier text on that sheet
            (a restore or a build on their own proposal carries it)."""
            if actor == MEMBER_V and self.carried_by.get(sheet_id) == MEMBER_V:
                own = self.ledger.written_by([MEMBER_V])
                self.member_markers |= self.step_markers | {
                    m for r in self.world.revisions.values() if r.sheet_id == sheet_id
                    for m in r.markers & own}

        def describe(self, markers: set[str]) -> str:
            lines = []
            for m in sorted(markers):
                where = [f"r{r.id}({r.status}, by {self.actor_of.get(r.author_id, '?')})"
                         for r in self.world.revisions.values() if m in r.markers]
                lines.append(f"{m} written by {self.ledger.owner.get(m, '?')}, in "
                             + (", ".join(where) or "no revision"))
            return "; ".join(lines)

        def check(self, actor: str, response: TestResponse, where: str, *,
                  reader: bool = False) -> None:
            """Invariants 1 and 2 on one response. `reader`: a read (invariant 1 applies to the
            anonymous reader's reads, not to the answers to an anonymous reporter's own posts)."""
            # What the request itself carries (an address with a slug, a query) is no leak.
            asked = markers_in(response.request.url) if response.request is not None else set()
            found = markers_in(response.get_data(as_text=True)) - asked
            visible = self.visible_to(actor)
            if not found or visible is None:
                return
            body = response.get_data(as_text=True)
            if reader and actor == ANON:
                bad = found - self.publishable()
                if bad:
                    self._leak(self._publisher(bad), actor, body, bad, where,
                               "anonymous reader sees text that no moderator approved")
            bad = found - visible
            if bad:
                kind = DraftShownInConflictAnswer if response.status_code == 409 \
                    else (UnreviewedTextPublished if actor == ANON else DraftShownToOtherUser)
                self._leak(kind, actor, body, bad, where,
                           f"{actor} gets text of a revision they may not see")

        def _publisher(self, bad: set[str]) -> type[TrustViolation]:
            """Which save published these markers, when an approved save of someone else did."""
            for revision in self.world.revisions.values():
                if revision.status == "approved" and revision.markers & bad:
                    author = self.actor_of.get(revision.author_id)
                    if author == TRUSTED:
                        return PublishedByTrustedSave
                    if author == MOD:
                        return PublishedByModeratorSave
            return UnreviewedTextPublished

        def _leak(self, kind: type[TrustViolation], actor: str, body: str, bad: set[str],
                  where: str, what: str) -> None:
            stripped = body
            for sheet in self.world.sheets.values():
                if markers_in(sheet.slug) & bad:
                    stripped = stripped.replace(sheet.slug, "")
            if not markers_in(stripped) & bad:
                kind = UnreviewedTitleInSlug
                what += " (only in the sheet's address: the slug comes from an unapproved title)"
            self.fail(kind, f"{what}: {where}\n  {self.describe(bad)}")

        def sheet_at(self, pick: int) -> SheetRow | None:
            sheets = self.world.sheet_list()
            return sheets[pick % len(sheets)] if sheets else None

        def base_for(self, mode: str, pick: int, honest: int | None, sheet: SheetRow) -> int:
            """The `base_revision` sent: the one the form or the API offered ("honest"), any
            revision of the sheet, other people's pending and rejected ones included ("sheet"),
            or one that is not of this sheet: another sheet's, or no revision at all ("other")."""
            ids = self.world.revision_ids()
            if mode == "honest" and honest is not None:
                return honest
            own = [i for i in ids if self.world.revisions[i].sheet_id == sheet.id]
            if mode != "other" and own:
                return own[pick % len(own)]
            others = [i for i in ids if self.world.revisions[i].sheet_id != sheet.id]
            unknown = (ids[-1] if ids else 0) + 1 + pick % 3
            return [*others, unknown][pick % (len(others) + 1)]

        def seen_in(self, revision_id: int | None, name: str) -> set[str]:
            revision = self.world.revisions.get(revision_id or -1)
            return revision.field_markers(name) if revision else set()

        def changed(self) -> bool:
            return self.before.sheets != self.world.sheets or any(
                self.before.revisions.get(i) is None or self.before.revisions[i].status != r.status
                for i, r in self.world.revisions.items())

        def begin(self, description: str) -> None:
            self.stats["steps"] += 1
            self.steps.append(description)
            self.before = self.world
            self.step_markers = set()

        def end(self) -> None:
            self.world = read_world(app)
            # Once approved, a revision stays public (history), whatever status it gets later.
            self.ever_approved |= self.world.approved_markers()
            for actor in (C1, NEWBIE):
                if self.users[actor] in self.world.trusted:
                    self.promoted.add(actor)
            for write in self.ledger.writes:
                revision = self.world.revisions.get(write.revision_id)
                if revision is not None and revision.status == "approved":
                    self.ledger.accept(write)

        def record_writes(self, actor: str, changes: dict[str, str],
                          seen: dict[str, set[str]], *, readable: bool, where: str,
                          restore_of: int | None = None, base_id: int | None = None
                          ) -> list[Write]:
            """Writes are found in the database: the revisions this actor added in this step."""
            self.end()
            # Building on one's own proposal carries what that proposal started from: approving
            # the later one publishes both (pending proposals are cumulative).
            for earlier in self.ledger.writes:
                if earlier.revision_id == base_id and earlier.actor == actor:
                    seen = {name: seen.get(name, set()) | earlier.seen.get(name, set())
                            for name in {*seen, *earlier.seen}}
            new = [r for i, r in sorted(self.world.revisions.items())
                   if i not in self.before.revisions and r.author_id == self.users[actor]]
            writes = []
            for revision in new:
                write = Write(actor, revision.sheet_id, revision.id, dict(changes), seen,
                              restore_of=restore_of)
                # Built on the author's own pending proposal, which it replaced ("remplacée").
                replaced = self.world.revisions.get(revision.base_id or -1)
                if replaced is not None and replaced.status == "superseded":
                    write.replaces = next((w for w in self.ledger.writes
                                           if w.revision_id == replaced.id), None)
                self.ledger.writes.append(write)
                writes.append(write)
                if revision.status == "approved":
                    self.ledger.accept(write)
            if new:
                self.steps[-1] += f" -> r{new[-1].id} ({new[-1].status})"
            if new and not readable:
                self.fail(WriteWithoutRead, f"{actor}'s read was refused but the write went "
                          f"through: {where} created r{new[-1].id}")
            return writes

        def moderation_outcome(self, actor: str, where: str) -> None:
            if actor != MOD and self.changed():
                self.fail(PermissionBypass, f"{actor} is not a moderator and {where} changed "
                          "the base")

        # --- rules: creating ----------------------------------------------------------------

        def _new_sheet_data(self, actor: str) -> tuple[dict[str, Any], dict[str, str]]:
            changes = {name: self.new_marker(actor) for name in MARKED_FIELDS}
            data = {name: field_value(name, m) for name, m in changes.items()}
            return {**data, **PLAIN}, changes

        @initialize(author=st.sampled_from((MOD, TRUSTED)),
                    proposer=st.sampled_from((C1, C2, NEWBIE)),
                    editor=st.sampled_from((None, C1, C2)),
                    fields=st.sets(st.sampled_from(EDIT_FIELDS), min_size=1, max_size=3),
                    carrier=st.sampled_from(MEMBERS))
        def start(self, author: str, proposer: str, editor: str | None, fields: set[str],
                  carrier: str) -> None:
            """Every example starts with a published sheet, carried by a structure and maybe
            with a pending edit, and a new sheet waiting for review: the situations of the
            issues, one step away."""
            self.create(author, False)
            self.link(0, carrier)
            self.edit_api(carrier, 0, "honest", 0, fields)  # published at once if verified
            self.create(proposer, False)
            if editor is not None:
                self.edit_api(editor, 0, "honest", 0, fields)

        @rule(actor=st.sampled_from(LOGGED_IN), form=st.booleans())
        def create(self, actor: str, form: bool) -> None:
            self.begin(f"{actor} creates a sheet ({'form' if form else 'API'})")
            data, changes = self._new_sheet_data(actor)
            comment = f"Création {self.new_marker(actor)}"
            if form:
                url = "/fiches/nouvelle"
                fields = {name: as_form(value) for name, value in data.items()}
                fields.update(comment=comment, duplicates_seen="1", distinct="1",
                              distinct_reason="Une autre initiative, un autre lieu.")
                response = self.request(actor, "POST", url, data=fields)
            else:
                url = "/api/v1/sheets"
                response = self.request(actor, "POST", url, json={**data, "comment": comment})
            self.check(actor, response, f"POST {url}")
            self.record_writes(actor, changes, {}, readable=True, where=f"POST {url}")

        # --- rules: editing -----------------------------------------------------------------

        @rule(actor=st.sampled_from(LOGGED_IN), pick=st.integers(0, 999),
              base=st.sampled_from(("honest", "sheet", "other")), base_pick=st.integers(0, 999),
              fields=st.sets(st.sampled_from(EDIT_FIELDS), min_size=1, max_size=3))
        def edit_form(self, actor: str, pick: int, base: str, base_pick: int,
                      fields: set[str]) -> None:
            sheet = self.sheet_at(pick)
            if sheet is None:
                return
            url = f"/fiches/{sheet.slug}/modifier"
            page = self.request(actor, "GET", url)
            self.check(actor, page, f"GET {url}")
            values = form_values(page.get_data(as_text=True)) if page.status_code == 200 else {}
            honest = int(values["base_revision"]) if values.get("base_revision", "").isdigit() \
                else None
            base_id = self.base_for(base, base_pick, honest, sheet)
            self.begin(f"{actor} edits {sheet.slug} (form, base r{base_id} [{base}], "
                       f"fields {sorted(fields)}; GET form -> {page.status_code})")
            post = {k: v for k, v in values.items() if k not in ("csrf_token",)}
            if not values:  # the form was refused: an attacker posts a whole sheet of their own
                fields = {*fields, "title"}
            changes = {name: self.new_marker(actor) for name in sorted(fields)}
            seen = {name: markers_in(values.get(name)) | self.seen_in(base_id, name)
                    for name in changes}
            for name, m in changes.items():
                post[name] = as_form(field_value(name, m))
            post.update(base_revision=str(base_id), comment=f"Modif {self.new_marker(actor)}")
            self.member_wrote(actor, sheet.id)
            response = self.request(actor, "POST", url, data=post)
            self.check(actor, response, f"POST {url} (base r{base_id}) -> {response.status_code}")
            self.steps[-1] += f" -> {response.status_code}"
            self.record_writes(actor, changes, seen, readable=page.status_code < 400,
                               where=f"POST {url}", base_id=base_id)

        @rule(actor=st.sampled_from(EDITORS), pick=st.integers(0, 999),
              base=st.sampled_from(("honest", "sheet", "other")), base_pick=st.integers(0, 999),
              fields=st.sets(st.sampled_from(EDIT_FIELDS), min_size=1, max_size=3))
        def edit_api(self, actor: str, pick: int, base: str, base_pick: int,
                     fields: set[str]) -> None:
            sheet = self.sheet_at(pick)
            if sheet is None:
                return
            url = f"/api/v1/sheets/{sheet.slug}"
            got = self.request(actor, "GET", url)
            self.check(actor, got, f"GET {url}")
            shown = got.get_json(silent=True) if got.status_code == 200 else None
            honest = shown.get("revision") if isinstance(shown, dict) else None
            base_id = self.base_for(base, base_pick, honest if isinstance(honest, int) else None,
                                    sheet)
            self.begin(f"{actor} edits {sheet.slug} (API, base r{base_id} [{base}], "
                       f"fields {sorted(fields)}; GET -> {got.status_code})")
            changes = {name: self.new_marker(actor) for name in sorted(fields)}
            seen = {name: markers_in((shown or {}).get(name)) | self.seen_in(base_id, name)
                    for name in changes}
            body: dict[str, Any] = {name: field_value(name, m) for name, m in changes.items()}
            body.update(base_revision=base_id, comment=f"Modif {self.new_marker(actor)}")
            self.member_wrote(actor, sheet.id)
            response = self.request(actor, "PATCH", url, json=body)
            self.check(actor, response, f"PATCH {url} (base r{base_id}) -> {response.status_code}")
            self.steps[-1] += f" -> {response.status_code}"
            self.record_writes(actor, changes, seen, readable=got.status_code < 400,
                               where=f"PATCH {url}", base_id=base_id)

        @rule(actor=st.sampled_from((NEWBIE, NEWBIE, C1)), pick=st.integers(0, 999),
              times=st.integers(1, 3), api=st.booleans(),
              fields=st.sets(st.sampled_from(EDIT_FIELDS), min_size=1, max_size=2),
              approve=st.sampled_from((None, "api", "moderation", "sheet", "bulk")))
        def replace_own_proposal(self, actor: str, pick: int, times: int, api: bool,
                                 fields: set[str], approve: str | None) -> None:
            """Issue 20: a contributor replaces his own pending proposal, once or several times
            in a row, starting each time from the one he just saved (what his form offers);
            then, often, the moderator approves the last one (the issue's case, in one rule)."""
            mine = sorted(i for i, r in self.world.revisions.items()
                          if r.status == "pending" and r.author_id == self.users[actor])
            if not mine:
                return
            head = self.world.revisions[mine[pick % len(mine)]]
            sheet = self.world.sheets[head.sheet_id]
            for n in range(times):
                self.begin(f"{actor} replaces his proposal r{head.id} on {sheet.slug} "
                           f"({'API' if api else 'form'}, {n + 1}/{times}, fields "
                           f"{sorted(fields)})")
                changes = {name: self.new_marker(actor) for name in sorted(fields)}
                seen = {name: head.field_markers(name) for name in changes}
                values = {name: field_value(name, m) for name, m in changes.items()}
                comment = f"Remplace {self.new_marker(actor)}"
                url = f"/api/v1/sheets/{sheet.slug}" if api else f"/fiches/{sheet.slug}/modifier"
                page = self.request(actor, "GET", url)
                self.check(actor, page, f"GET {url}")
                if api:
                    response = self.request(actor, "PATCH", url, json={
                        **values, "base_revision": head.id, "comment": comment})
                else:
                    post = {k: v for k, v in form_values(page.get_data(as_text=True)).items()
                            if k != "csrf_token"}
                    post.update({name: as_form(v) for name, v in values.items()})
                    post.update(base_revision=str(head.id), comment=comment)
                    response = self.request(actor, "POST", url, data=post)
                self.check(actor, response, f"{response.request.method} {url} (base r{head.id})")
                self.steps[-1] += f" -> {response.status_code}"
                writes = self.record_writes(actor, changes, seen,
                                            readable=page.status_code < 400,
                                            where=f"{url} (replace)", base_id=head.id)
                if not writes:
                    return
                if actor not in self.promoted \
                        and self.world.revisions[head.id].status != "superseded":
                    self.fail(ReplacedProposalNotSuperseded, f"r{head.id} of {actor} was replaced by "
                              f"r{writes[-1].revision_id} but is "
                              f"{self.world.revisions[head.id].status}, not superseded")
                head = self.world.revisions[writes[-1].revision_id]
                if head.status != "pending":
                    return  # published at once: the account is trusted (invariant 4 says if
                    # it may be)
            if approve is not None:
                pending = [i for i, r in sorted(self.world.revisions.items())
                           if r.status == "pending"]
                self.approve(MOD, pending.index(head.id), approve)

        @rule(actor=st.sampled_from(LOGGED_IN), pick=st.integers(0, 999))
        def restore(self, actor: str, pick: int) -> None:
            ids = self.world.revision_ids()
            if not ids:
                return
            old = self.world.revisions[ids[pick % len(ids)]]
            sheet = self.world.sheets[old.sheet_id]
            shown = self.request(actor, "GET", f"/fiches/{sheet.slug}?revision={old.id}")
            self.check(actor, shown, f"GET /fiches/{sheet.slug}?revision={old.id}")
            self.begin(f"{actor} restores r{old.id} of {sheet.slug} "
                       f"(GET revision -> {shown.status_code})")
            approved = self.world.revisions.get(sheet.approved_revision_id or -1)
            seen = {name: approved.field_markers(name) if approved else set()
                    for name in MARKED_FIELDS}
            url = f"/fiches/{sheet.slug}/revisions/{old.id}/restaurer"
            self.member_wrote(actor, sheet.id)
            response = self.request(actor, "POST", url)
            self.check(actor, response, f"POST {url}")
            writes = self.record_writes(actor, {}, seen, readable=shown.status_code < 400,
                                        where=f"POST {url}", restore_of=old.id)
            for write in writes:
                write.restored = {name: old.field_markers(name) for name in MARKED_FIELDS}
            if writes and actor == MOD:
                # A moderator who restores a revision chose its text explicitly.
                self.ledger.endorsed |= old.markers

        @rule(member=st.sampled_from(MEMBERS), pick=st.integers(0, 999), form=st.booleans(),
              base_pick=st.integers(0, 999),
              fields=st.sets(st.sampled_from(EDIT_FIELDS), min_size=1, max_size=2),
              restore=st.booleans())
        def member_edits(self, member: str, pick: int, form: bool, base_pick: int,
                         fields: set[str], restore: bool) -> None:
            """A member edits (or restores a revision of) a sheet a structure carries, theirs
            or the other one's (the generic edit rules also draw members, on any sheet)."""
            ids = [s.id for s in self.world.sheet_list()]
            carried = [ids.index(i) for i in sorted(self.carried_by) if i in ids]
            if not carried:
                return
            index = carried[pick % len(carried)]
            if restore:
                sheet_id = ids[index]
                own = [n for n, i in enumerate(self.world.revision_ids())
                       if self.world.revisions[i].sheet_id == sheet_id]
                self.restore(member, own[base_pick % len(own)])
            elif form:
                self.edit_form(member, index, "honest", base_pick, fields)
            else:
                self.edit_api(member, index, "honest", base_pick, fields)

        @rule(pick=st.integers(0, 999), member=st.sampled_from(MEMBERS))
        def link(self, pick: int, member: str) -> None:
            """A moderator names the structure that carries a published sheet (issue 24)."""
            sheet = self.sheet_at(pick)
            if sheet is None:
                return
            self.begin(f"mod links {sheet.slug} to the structure of {member}")
            url = f"/fiches/{sheet.slug}/structure"
            response = self.request(MOD, "POST", url,
                                    data={"structure_id": str(self.structures[member])})
            self.steps[-1] += f" -> {response.status_code}"
            if response.status_code == 302:
                self.carried_by[sheet.id] = member
            self.end()

        # --- rules: reviewing ---------------------------------------------------------------

        def _review_target(self, pick: int) -> RevisionRow | None:
            pending = [r for _, r in sorted(self.world.revisions.items()) if r.status == "pending"]
            pool = pending or [self.world.revisions[i] for i in self.world.revision_ids()]
            return pool[pick % len(pool)] if pool else None

        def _review(self, actor: str, revision: RevisionRow, decision: str, channel: str) -> str:
            fr = {"approve": "approuver", "reject": "refuser"}[decision]
            form = {"reason": REASON, "next": "/"}
            if channel == "api":
                url = f"/api/v1/revisions/{revision.id}/{decision}"
                response = self.request(actor, "POST", url, json={"reason": REASON})
            elif channel == "moderation":
                url = f"/moderation/revisions/{revision.id}/{fr}"
                response = self.request(actor, "POST", url, data=form)
            elif channel == "sheet":
                url = f"/revisions/{revision.id}/{fr}"
                response = self.request(actor, "POST", url, data=form)
            else:
                url = "/moderation/revisions/lot"
                response = self.request(actor, "POST", url, data={
                    "action": fr, "revision": str(revision.id), "reason": REASON})
            self.check(actor, response, f"POST {url}")
            return f"POST {url} -> {response.status_code}"

        @rule(actor=MODERATION_ACTORS, pick=st.integers(0, 999),
              channel=st.sampled_from(("api", "moderation", "sheet", "bulk")))
        def approve(self, actor: str, pick: int, channel: str) -> None:
            target = self._review_target(pick)
            if target is None:
                return
            self.begin(f"{actor} approves r{target.id} ({target.status}) via {channel}")
            where = self._review(actor, target, "approve", channel)
            self.end()
            self.steps[-1] += f" -> {self.world.revisions[target.id].status}"
            self.moderation_outcome(actor, where)
            after = self.world.revisions[target.id].status
            if actor == MOD and target.status == "pending" and after not in ("pending", "rejected"):
                self.ledger.endorsed |= target.markers
                author = self.actor_of.get(target.author_id, "")
                self.approvals.setdefault(author, []).append(target.sheet_id)
                for write in self.ledger.writes:
                    if write.revision_id == target.id:
                        self.ledger.accept(write)

        @rule(actor=MODERATION_ACTORS, pick=st.integers(0, 999),
              channel=st.sampled_from(("api", "moderation", "sheet", "bulk")))
        def reject(self, actor: str, pick: int, channel: str) -> None:
            target = self._review_target(pick)
            if target is None:
                return
            self.begin(f"{actor} rejects r{target.id} ({target.status}) via {channel}")
            where = self._review(actor, target, "reject", channel)
            self.end()
            self.steps[-1] += f" -> {self.world.revisions[target.id].status}"
            self.moderation_outcome(actor, where)

        # --- rules: reports, visibility, archive, merge -------------------------------------

        @rule(actor=st.sampled_from((ANON, *LOGGED_IN)), pick=st.integers(0, 999),
              reason=st.sampled_from(("spam", "outdated")), api=st.booleans(),
              address=st.integers(1, 4))
        def report(self, actor: str, pick: int, reason: str, api: bool, address: int) -> None:
            sheet = self.sheet_at(pick)
            if sheet is None:
                return
            self.begin(f"{actor} reports {sheet.slug} ({reason}, {'API' if api else 'form'})")
            comment = f"Signalement {self.new_marker(actor)}"
            environ = {"REMOTE_ADDR": f"10.0.0.{address}"}
            if api:
                url = f"/api/v1/sheets/{sheet.slug}/reports"
                response = self.request(actor, "POST", url, environ_base=environ,
                                        json={"reason": reason, "comment": comment})
            else:
                url = f"/fiches/{sheet.slug}/signaler"
                response = self.request(actor, "POST", url, environ_base=environ,
                                        data={"reason": reason, "comment": comment})
            self.check(actor, response, f"POST {url}")
            self.end()

        @rule(actor=MODERATION_ACTORS, pick=st.integers(0, 999),
              action=st.sampled_from(("masquer", "retablir", "archiver", "desarchiver")))
        def visibility(self, actor: str, pick: int, action: str) -> None:
            sheet = self.sheet_at(pick)
            if sheet is None:
                return
            self.begin(f"{actor} {action} {sheet.slug} ({sheet.state})")
            url = f"/moderation/fiches/{sheet.slug}/{action}"
            response = self.request(actor, "POST", url, data={"reason": REASON})
            self.check(actor, response, f"POST {url}")
            self.end()
            self.moderation_outcome(actor, f"POST {url}")

        @rule(actor=MODERATION_ACTORS, pick_a=st.integers(0, 999), pick_b=st.integers(0, 999),
              keep=st.sampled_from(("a", "b")),
              from_other=st.sets(st.sampled_from(EDIT_FIELDS), max_size=3))
        def merge(self, actor: str, pick_a: int, pick_b: int, keep: str,
                  from_other: set[str]) -> None:
            a, b = self.sheet_at(pick_a), self.sheet_at(pick_b)
            if a is None or b is None or a.id == b.id:
                return
            from kb.duplicates import operations as dup_ops

            with app.app_context():  # a moderator found the pair in the queue
                candidate = dup_ops.find_candidate(a.id, b.id) \
                    or dup_ops.add_candidate(a.id, b.id, 0.9, "scan")
                commit()
                assert candidate is not None
                candidate_id = candidate.id
                # The pair is stored in id order: "a" and "b" are its sides, not the draws.
                a, b = self.world.sheets[candidate.sheet_a_id], self.world.sheets[candidate.sheet_b_id]
                db.session.remove()
            survivor, other = (a, b) if keep == "a" else (b, a)
            self.begin(f"{actor} merges {other.slug} into {survivor.slug} "
                       f"(from the other: {sorted(from_other)})")
            other_side = "b" if keep == "a" else "a"
            form = {"survivor": keep, "comment": ""}
            for name in MARKED_FIELDS:
                form[f"field_{name}"] = other_side if name in from_other else keep
            url = f"/moderation/doublons/{candidate_id}/fusionner"
            response = self.request(actor, "POST", url, data=form)
            self.check(actor, response, f"POST {url}")
            kept = self.world.revisions.get(survivor.approved_revision_id or -1)
            absorbed = self.world.revisions.get(other.approved_revision_id or -1)
            self.end()
            self.moderation_outcome(actor, f"POST {url}")
            if self.world.sheets[other.id].state != "merged" or kept is None or absorbed is None:
                return
            self.steps[-1] += " -> merged"
            # The merge is the moderator's knowing choice between two approved texts: what it
            # keeps moves to the survivor, what it leaves out is superseded.
            for change in self.ledger.changes:
                if change.sheet_id not in (survivor.id, other.id) or self.ledger.superseded(change):
                    continue
                expected = kept.field_markers(change.field)
                if change.field in LIST_FIELDS:
                    expected |= absorbed.field_markers(change.field)
                elif change.field in from_other:
                    expected = absorbed.field_markers(change.field)
                if change.marker in expected:
                    change.sheet_id = survivor.id
                else:
                    change.superseded_by = f"merge of {other.slug} into {survivor.slug}"

        # --- invariants: through the responses ----------------------------------------------

        def some(self, items: Sequence[Any]) -> list[Any]:
            """All of them in the deep profile; in the ci one, one of them, a different one at
            each step of an example (deterministic: Hypothesis replays and shrinks the same)."""
            if FULL_SWEEP or len(items) <= 1:
                return list(items)
            return [items[len(self.steps) % len(items)]]

        def sheet_pages(self, actor: str, sheet: SheetRow, revisions: list[RevisionRow]
                        ) -> list[str]:
            """What `actor` reads of a sheet that changed: the page and the API object always
            (the paths of the issue's cases), the history, changed revisions, diff and embeds
            in turn."""
            slug = sheet.slug
            changed = [r.id for r in revisions if r.sheet_id == sheet.id]
            more = [f"/fiches/{slug}/historique", *(f"/fiches/{slug}?revision={i}" for i in changed)]
            if actor == ANON:
                more += [*(f"/fiches/{slug}/diff?to={i}" for i in changed), f"/embed/sheets/{slug}",
                         f"/oembed?format=json&url=http://kb.test/fiches/{slug}"]
            return [f"/fiches/{slug}", f"/api/v1/sheets/{slug}", *self.some(more)]

        def touched(self) -> tuple[list[SheetRow], list[RevisionRow]]:
            revisions = [r for i, r in sorted(self.world.revisions.items())
                         if self.before.revisions.get(i) is None
                         or self.before.revisions[i].status != r.status]
            ids = {r.sheet_id for r in revisions} | {
                i for i, s in self.world.sheets.items() if self.before.sheets.get(i) != s}
            return [self.world.sheets[i] for i in sorted(ids)], revisions

        @invariant()
        def check_1_2_readers_see_only_what_they_may(self) -> None:
            sheets, revisions = self.touched()
            if not sheets and not self.step_markers:
                return
            for sheet in sheets:
                for actor in READERS:
                    for url in self.sheet_pages(actor, sheet, revisions):
                        self.check(actor, self.request(actor, "GET", url), f"{actor} GET {url}",
                                   reader=True)
            # Moderators' pages and API, asked by contributors: refused, and nothing in them.
            if revisions:
                probes = [(C1, f"/moderation/revisions/{revisions[0].id}"),
                          (C2, "/api/v1/moderation/revisions"), (C1, "/moderation")]
                for actor, url in self.some(probes):
                    self.check(actor, self.request(actor, "GET", url), f"{actor} GET {url}",
                               reader=True)
            # Their own revisions, listed: for the authors whose revisions changed.
            authors = {self.actor_of.get(r.author_id) for r in revisions} \
                & {C1, C2, TRUSTED, NEWBIE}
            for actor in sorted(a for a in authors if a):
                self.check(actor, self.request(actor, "GET", "/mes-fiches"),
                           f"{actor} GET /mes-fiches", reader=True)
            if sheets:
                for url in [PUBLIC_LISTINGS[0], *self.some(PUBLIC_LISTINGS[1:])]:
                    self.check(ANON, self.request(ANON, "GET", url), f"anon GET {url}",
                               reader=True)
            self._search()

        def _search(self) -> None:
            """Search for this step's markers: results only through text the reader may see."""
            # One word per step (each unknown word costs the engine a typo-correction scan):
            # preferably one an anonymous reader must not find.
            hidden = sorted(self.step_markers - self.publishable())
            words = (hidden or sorted(self.step_markers))[:1]
            if not words:
                return
            q = words[0]
            found = self.request(ANON, "GET", "/api/v1/search", query_string={
                "q": q, "per_page": 100})
            # The search page renders the same result (and repeats the query): the API suffices.
            self.check(ANON, found, f"anon GET /api/v1/search?q={q}", reader=True)
            for item in (found.get_json(silent=True) or {}).get("items", []):
                sheet = self.world.sheet_by_slug(item.get("slug", ""))
                approved = self.world.revisions.get(sheet.approved_revision_id or -1) \
                    if sheet else None
                if approved is None or not approved.markers & set(words):
                    self.fail(SearchMatchesUnreviewedText,
                              f"anon search for {q} finds {item.get('slug')}, whose approved text "
                              f"has none of these words\n  {self.describe(set(words))}")

        @invariant()
        def check_4_trusted_only_by_the_rule(self) -> None:
            for actor in (C1, NEWBIE):
                if self.users[actor] not in self.world.trusted:
                    continue
                sheets = self.approvals.get(actor, [])
                old_enough = actor == C1
                if len(sheets) < AUTO_TRUST_AFTER or len(set(sheets)) < AUTO_TRUST_SHEETS \
                        or not old_enough:
                    self.fail(TrustGrantedAgainstRule,
                              f"{actor} is trusted after {len(sheets)} approvals by a moderator "
                              f"on {len(set(sheets))} sheets (account old enough: {old_enough})")

        @invariant()
        def check_3_no_accepted_change_is_lost(self) -> None:
            sheets, _ = self.touched()
            touched = {s.id for s in sheets}
            texts: dict[int, dict[str, Any] | None] = {}
            for change in self.ledger.changes:
                if change.sheet_id not in touched or self.ledger.superseded(change):
                    continue
                if change.sheet_id not in texts:
                    texts[change.sheet_id] = self._approved_text(change.sheet_id)
                data = texts[change.sheet_id]
                if self.world.sheets[change.sheet_id].state == "merged":
                    self.fail(AcceptedOnMergedSheet,
                              f"{change.field} = {change.marker} of r{change.write.revision_id} "
                              f"(by {change.write.actor}) was accepted on "
                              f"{self.world.sheets[change.sheet_id].slug}, merged into another "
                              "sheet: no reader will see it")
                if data is None or change.marker not in markers_in(data.get(change.field)):
                    sheet = self.world.sheets[change.sheet_id]
                    self.fail(AcceptedChangeLost,
                              f"{change.field} = {change.marker} of r{change.write.revision_id} "
                              f"(by {change.write.actor}) was accepted, is not in the approved "
                              f"text of {sheet.slug} (r{sheet.approved_revision_id}), and no later "
                              f"accepted change started from it; {change.field} is now "
                              f"{(data or {}).get(change.field)!r}")

        def _approved_text(self, sheet_id: int) -> dict[str, Any] | None:
            """What readers get (anonymous API); hidden or merged sheets: the stored approved text."""
            sheet = self.world.sheets[sheet_id]
            if sheet.state in ("active", "archived"):
                got = self.request(ANON, "GET", f"/api/v1/sheets/{sheet.slug}")
                if got.status_code == 200:
                    return got.get_json()  # type: ignore[no-any-return]
            revision = self.world.revisions.get(sheet.approved_revision_id or -1)
            return revision.data if revision else None

    return TrustMachine


def test_trust_model_holds_through_every_response(trust_app: Flask, workdir: Path) -> None:
    machine = build_machine(trust_app, workdir / "indexes")
    started = time.monotonic()
    try:
        run_state_machine_as_test(machine, settings=PROFILES[PROFILE])
    finally:
        # Shown by `pytest -rP` (make test-deep) and with any failure.
        stats = machine.stats  # type: ignore[attr-defined]
        database = "postgresql" if "postgresql" in trust_app.config["SQLALCHEMY_DATABASE_URI"] \
            else "sqlite"
        print(f"trust property test, profile {PROFILE} on {database}: {stats['examples']} examples "
              f"run (generated and shrunk), {stats['steps']} steps, {stats['requests']} requests, "
              f"{time.monotonic() - started:.1f} s")

