"""The one commit point. Listeners (the search index...) hear of changed sheets after commit.

It also keeps the publication versions (issue 27): each commit that marked sheets bumps, in
the same transaction, the version of each of them and the one listing version. Cached answers
for anonymous readers (kb/cache) are keyed on these versions and nothing else decides when one
is still valid: whatever changes what a reader sees must `mark_changed` the sheets it touches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from blinker import Namespace
from flask import current_app
from sqlalchemy import DateTime, Integer, String, event, select, tuple_
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as SessionBase

from kb.extensions import db
from kb.timeutil import utcnow

if TYPE_CHECKING:
    from sqlalchemy import Executable
    from sqlalchemy.orm import Session

    from kb.sheets.models import Sheet

log = logging.getLogger(__name__)
_signals = Namespace()

# Sent after a successful commit with `sheet_ids`: sheets whose published state may have changed.
sheets_changed = _signals.signal("sheets-changed")

_CHANGED = "kb_changed_sheets"
# Set in `db.session.info` while a bulk import runs: listeners skip per-sheet work that a
# scheduled command does for the whole base (the duplicates comparison).
BULK_IMPORT = "kb_bulk_import"


def mark_changed(sheets: Iterable[Sheet | int]) -> None:
    """Note sheets (objects, or ids) whose published state may change at the next commit."""
    db.session.info.setdefault(_CHANGED, []).extend(sheets)


_SHOWN = "kb_shown_sheets"
# A model whose rows readers see on a sheet's page and in listings (a visit's seats, an
# availability) names, in this attribute, the relationship to that sheet: any change to one
# of its rows bumps the sheet's publication version at the commit, whatever code made it.
SHOWN_ON_SHEET = "__shown_on_sheet__"


def mark_shown(sheet_ids: Iterable[int]) -> None:
    """Note sheets whose page changes for readers although their indexed text does not:
    their publication versions move at the next commit; no `sheets_changed` listener runs."""
    db.session.info.setdefault(_SHOWN, set()).update(sheet_ids)


@event.listens_for(SessionBase, "before_flush")
def _note_shown_rows(session: Session, _context: Any, _instances: Any) -> None:
    shown = session.info.setdefault(_SHOWN, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        relation = getattr(type(obj), SHOWN_ON_SHEET, None)
        if relation is None or (obj in session.dirty and not session.is_modified(obj)):
            continue
        # "self": the sheet itself (its id may come with this flush: kept as the object).
        sheet = obj if relation == "self" else getattr(obj, relation, None)
        sheet_id = None if relation == "self" else getattr(obj, f"{relation}_id", None)
        if sheet_id or sheet is not None:
            shown.add(sheet_id or sheet)


def _shown_ids(session: Session) -> set[int]:
    return {item if isinstance(item, int) else item.id
            for item in session.info.get(_SHOWN, ()) if isinstance(item, int) or item.id}


def marked_ids(session: Session) -> set[int]:
    """Ids of the sheets marked in this session (after a flush: new sheets have ids)."""
    return {item if isinstance(item, int) else item.id
            for item in session.info.get(_CHANGED, []) if isinstance(item, int) or item.id}


class PublicationVersion(db.Model):  # type: ignore[name-defined]
    """A counter per sheet (`scope` "sheet", `ref` its id) and one for every listing
    (`scope` "listing", `ref` 0): what an anonymous reader sees of them changed `version` times."""

    __tablename__ = "publication_versions"

    scope: Mapped[str] = mapped_column(String(10), primary_key=True)
    ref: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PublicationChange(db.Model):  # type: ignore[name-defined]
    """The sheets whose change moved the listing to `listing_version` (`sheet_id` 0: too many
    to name, as an import; any listing may have changed). The last KEPT_CHANGES versions are
    kept: a cached listing that shows none of them stays valid (kb/cache)."""

    __tablename__ = "publication_changes"

    listing_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    sheet_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime)


SHEET, LISTING = "sheet", "listing"
Version = tuple[int, datetime | None]
EVERY_SHEET = 0  # a `PublicationChange.sheet_id`: more sheets changed than NAMED_CHANGES
NAMED_CHANGES = 100
KEPT_CHANGES = 1000


def _bump(sheet_ids: Iterable[int], sheets: bool = True) -> None:
    """+1 on each sheet's version (unless `sheets` is False) and on the listing version,
    inside the current transaction. One upsert sent for all rows (an import's thousands
    included), in a fixed order (ids, then the listing): two writers never wait on each
    other's rows crosswise (PostgreSQL)."""
    from sqlalchemy.dialects import postgresql, sqlite

    connection = db.session.connection()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    table = PublicationVersion.__table__
    now = utcnow()
    ids = sorted(set(sheet_ids))
    rows = [{"scope": SHEET, "ref": i, "version": 1, "changed_at": now} for i in ids if sheets]
    rows.append({"scope": LISTING, "ref": 0, "version": 1, "changed_at": now})
    statement = insert(table)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=[table.c.scope, table.c.ref],
        set_={"version": table.c.version + 1, "changed_at": statement.excluded.changed_at}), rows)
    # Which sheets moved the listing to its new version (its row is ours until the commit).
    listing = db.session.scalar(select(PublicationVersion.version).where(
        PublicationVersion.scope == LISTING, PublicationVersion.ref == 0)) or 0
    named = ids if 0 < len(ids) <= NAMED_CHANGES else [EVERY_SHEET]
    changes = PublicationChange.__table__
    db.session.execute(insert(changes), [
        {"listing_version": listing, "sheet_id": i, "changed_at": now} for i in named])
    db.session.execute(changes.delete().where(
        changes.c.listing_version <= listing - KEPT_CHANGES))


def bump_listing(sheet_ids: Iterable[int]) -> None:
    """The listing version again, in a commit of its own. A search index written after the
    data's commit (PostgreSQL's, Whoosh) calls it once written: a search rendered in between,
    from the older index, is then not served past it."""
    try:
        _bump(sheet_ids, sheets=False)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def versions(sheet_ids: Iterable[int] = ()) -> dict[tuple[str, int], Version]:
    """The listing's version and those of `sheet_ids`, in one query; (0, None) for a counter
    never bumped."""
    wanted = [(LISTING, 0), *((SHEET, i) for i in sheet_ids)]
    rows = db.session.execute(select(
        PublicationVersion.scope, PublicationVersion.ref, PublicationVersion.version,
        PublicationVersion.changed_at).where(
        tuple_(PublicationVersion.scope, PublicationVersion.ref).in_(wanted)))
    found: dict[tuple[str, int], Version] = {key: (0, None) for key in wanted}
    for scope, ref, version, changed_at in rows:
        found[(scope, ref)] = (version, changed_at)
    return found


def commit() -> None:
    try:
        db.session.flush()  # new sheets get their ids
        changed = marked_ids(db.session())
        shown = changed | _shown_ids(db.session())
        if shown:
            _bump(shown)  # in this transaction: a reader never pairs new text with an old version
        # The marks stay readable during the commit: an index in the same database
        # (kb/search/sqlite_backend.py) writes them just before it.
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    finally:
        db.session.info.pop(_CHANGED, None)
        db.session.info.pop(_SHOWN, None)
    if changed:
        # The database is the truth: a listener's failure must not undo or hide the commit.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        for receiver in sheets_changed.receivers_for(app):
            try:
                receiver(app, sheet_ids=sorted(changed))
            except Exception:  # noqa: BLE001
                log.exception("after-commit listener failed; `kb index update` will reconcile")


def record_apart(statement: Executable) -> None:
    """Run one bookkeeping write (a token's last use) in a short transaction of its own, so
    that it is kept whatever the request does with its own (reads only, fails). Best effort:
    a database busy with another writer skips it rather than failing the request."""
    if _sqlite_session_writes():
        # This request holds SQLite's write lock already: a second connection would wait for
        # it. The write goes with the request's own commit instead.
        db.session.execute(statement)
        return
    try:
        with db.engine.begin() as connection:
            connection.execute(statement)
    except OperationalError:
        log.warning("bookkeeping write skipped (database busy)")


def _sqlite_session_writes() -> bool:
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return False
    return bool(connection.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]


def begin_write() -> None:
    """Start the current transaction as a writer, now.

    PostgreSQL: nothing to do. SQLite (pysqlite) starts a transaction only at the first
    INSERT/UPDATE, so reads before it see no lock, and a SAVEPOINT sent first would open the
    transaction itself and be committed by its RELEASE. BEGIN IMMEDIATE takes the write lock
    (waiting for another writer, up to the busy timeout): what is read next stays true until
    the commit.
    """
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return
    if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def savepoint() -> Iterator[None]:
    """A SAVEPOINT around a write that may fail on a unique constraint (a race lost to another
    request): on IntegrityError only the savepoint is rolled back and the caller may retry."""
    begin_write()
    with db.session.begin_nested():
        yield
