"""From the database (the truth) to index documents: only approved revisions of published sheets."""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from html import unescape
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from kb.extensions import db
from kb.search.analysis import fold, folded_words
from kb.search.backend import Document, Filters
from kb.sheets.fields import FIELDS, Field, Kind
from kb.sheets.models import Revision, Sheet, SheetState, Tag, published_sheets, sheet_tags
from kb.sheets.territories import DEPARTMENTS, department_code

SEARCHABLE: tuple[Field, ...] = tuple(
    f for f in FIELDS if f.searchable and f.kind not in (Kind.CHOICE, Kind.URL))
SNIPPET_FIELDS: tuple[str, ...] = tuple(
    f.name for f in SEARCHABLE if f.name == "summary" or f.kind is Kind.LONG)
SNIPPET_MAX = 8_000
CHUNK = 500


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](url) -> text
_MAYBE_MARKUP = re.compile(r"[\[\]#>*_`~<&!|=+-]|^\s*\d+[.)]", re.M)  # else: plain text already
_MARKUP = re.compile(r"(?m)^\s{0,3}(?:[#>]+|[-*+]|\d+[.)])\s+|[*_`~]{1,3}|<[^>]*>|^\s*[-*_]{3,}\s*$")


def markdown_text(source: str) -> str:
    """Markdown to text for the index and extracts, without a Markdown parser.

    Only words matter to the index, so links keep their text, markers go and HTML tags are
    dropped; kb.text.plain_text (a full CommonMark render) costs ~0.4 ms a field, which
    made rebuilds of large bases several times slower.
    """
    if _MAYBE_MARKUP.search(source):
        source = unescape(_MARKUP.sub(" ", _LINK.sub(r"\1", source)))
    return " ".join(source.split())


def field_text(f: Field, value: object) -> str:
    if f.kind is Kind.LIST:
        return "\n".join(str(v) for v in value or [])  # type: ignore[attr-defined]
    if f.kind is Kind.LONG:
        return markdown_text(str(value or ""))
    return str(value or "")


def department_key(value: str) -> str:
    code = department_code(value) if value else None
    return code or " ".join(fold(value).split())


def department_label(value: str) -> str:
    code = department_code(value) if value else None
    return f"{DEPARTMENTS[code]} ({code})" if code else value.strip()


def city_key(value: str) -> str:
    return " ".join(fold(value).replace("-", " ").split())


def normalise_filters(scale: str = "", actor_type: str = "", tag: str = "", department: str = "",
                      city: str = "") -> Filters:
    return Filters(scale=scale.strip().lower(), actor_type=actor_type.strip().lower(),
                   tag=tag.strip().lower(), department=department_key(department.strip()),
                   city=city_key(city))


def stamp(revision_id: int, last_reviewed_at: object, interval: int, slug: str) -> str:
    """What the index must agree with; compared by `kb index update` and `kb index check`."""
    return f"{revision_id}|{last_reviewed_at}|{interval}|{slug}"


def document(sheet: Sheet) -> Document | None:
    """The sheet's index document, or None when readers may not find it."""
    revision = sheet.approved_revision
    if not sheet.is_published or revision is None:
        return None
    return build_document(sheet.id, revision.id, sheet.slug, revision.data,
                          {tag.slug: tag.name for tag in sheet.tags}, sheet.updated_at,
                          sheet.last_reviewed_at, sheet.review_interval_months)


def build_document(sheet_id: int, revision_id: int, slug: str, data: dict[str, Any],
                   tags: dict[str, str], updated_at: datetime, last_reviewed_at: datetime,
                   review_interval_months: int) -> Document:
    """A published sheet's document from its columns and its approved revision's data."""
    texts = {f.name: field_text(f, data.get(f.name)) for f in SEARCHABLE}
    dept = str(data.get("department", "") or "")
    if dept and department_code(dept):
        texts["department"] = f"{dept} {DEPARTMENTS[department_code(dept) or '']}"
    snippet = " · ".join(texts[name] for name in SNIPPET_FIELDS if texts.get(name))
    distinct: set[str] = set().union(*map(folded_words, texts.values()))
    vocabulary = sorted(w for w in distinct if 3 <= len(w) <= 40 and not w.isdigit())
    city = str(data.get("city", "") or "")
    due = Sheet(last_reviewed_at=last_reviewed_at,
                review_interval_months=review_interval_months).review_due_at
    return Document(
        sheet_id=sheet_id,
        revision_id=revision_id,
        stamp=stamp(revision_id, last_reviewed_at, review_interval_months, slug),
        slug=slug,
        title=str(data.get("title", "")),
        fields=texts,
        snippet_source=snippet[:SNIPPET_MAX],
        vocabulary=vocabulary,
        scale=str(data.get("scale", "") or ""),
        actor_type=str(data.get("actor_type", "") or ""),
        department=department_key(dept),
        department_label=department_label(dept),
        city=city_key(city),
        city_label=city.strip(),
        tags=tags,
        updated_at=updated_at,
        review_due_at=due,
    )


def load_documents(sheet_ids: list[int], session: Session | None = None
                   ) -> dict[int, Document | None]:
    """Current documents of these sheets (None: remove from the index).

    Plain rows, not ORM objects: rebuilds and imports read thousands of sheets.
    """
    reader: Any = session or db.session
    found: dict[int, Document | None] = dict.fromkeys(sheet_ids)
    for start in range(0, len(sheet_ids), CHUNK):
        chunk = sheet_ids[start:start + CHUNK]
        tags: dict[int, dict[str, str]] = {}
        for sheet_id, slug, name in reader.execute(
                select(sheet_tags.c.sheet_id, Tag.slug, Tag.name)
                .join(Tag, Tag.id == sheet_tags.c.tag_id)
                .where(sheet_tags.c.sheet_id.in_(chunk)).order_by(Tag.name)):
            tags.setdefault(sheet_id, {})[slug] = name
        for row in reader.execute(
                select(Sheet.id, Revision.id, Sheet.slug, Revision.data, Sheet.updated_at,
                       Sheet.last_reviewed_at, Sheet.review_interval_months)
                .join(Revision, Revision.id == Sheet.approved_revision_id)
                .where(Sheet.id.in_(chunk), Sheet.state == SheetState.ACTIVE.value)):
            found[row[0]] = build_document(row[0], row[1], row[2], row[3],
                                           tags.get(row[0], {}), row[4], row[5], row[6])
    return found


def published_stamps() -> dict[int, str]:
    """sheet id -> stamp of every sheet the index should hold."""
    rows = db.session.execute(
        published_sheets().with_only_columns(
            Sheet.id, Sheet.approved_revision_id, Sheet.last_reviewed_at,
            Sheet.review_interval_months, Sheet.slug)
    ).all()
    return {row[0]: stamp(row[1] or 0, row[2], row[3], row[4]) for row in rows}


def all_documents() -> Iterator[Document]:
    """Every published sheet's document, read in chunks (rebuild)."""
    ids = sorted(published_stamps())
    # A session of its own, emptied after each chunk: memory stays flat on large bases and
    # the caller's objects stay attached.
    with Session(db.engine) as session:
        for start in range(0, len(ids), CHUNK):
            for doc in load_documents(ids[start:start + CHUNK], session).values():
                if doc is not None:
                    yield doc
            session.expunge_all()


def all_documents_in_background(prepare: Callable[[Document], None] | None = None
                                ) -> Iterator[Document]:
    """all_documents() built by a forked process, so that a rebuild uses a second core while
    this one writes the index (building documents is about a fifth of a Whoosh rebuild).
    `prepare` (the engine's own analysis, stored in `Document.prepared`) runs there too.

    Only for the CLI and benchmarks: never fork a web worker.
    """
    context = multiprocessing.get_context("fork")
    channel: Any = context.Queue(maxsize=16)
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def produce() -> None:
        try:
            with app.app_context():
                db.engine.dispose(close=False)  # the parent's connections stay the parent's
                batch: list[Document] = []
                for doc in all_documents():
                    if prepare is not None:
                        prepare(doc)
                    batch.append(doc)
                    if len(batch) >= 100:
                        channel.put(batch)
                        batch = []
                channel.put(batch)
            channel.put(None)
        except BaseException as exc:  # noqa: BLE001 - reported by the parent
            channel.put(f"{type(exc).__name__}: {exc}")

    process = context.Process(target=produce, daemon=True)
    process.start()
    try:
        while True:
            item = channel.get(timeout=600)
            if item is None:
                break
            if isinstance(item, str):
                raise RuntimeError(f"construction des documents : {item}")
            yield from item
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
