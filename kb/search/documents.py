"""From the database (the truth) to index documents: only approved revisions of published sheets."""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from kb.extensions import db
from kb.search.analysis import words
from kb.search.backend import Document
from kb.sheets.fields import FIELDS, Field, Kind
from kb.sheets.filters import COLUMNS as FACET_COLUMNS
from kb.sheets.filters import facet_values
from kb.sheets.models import Sheet, published_sheets
from kb.territories.places import derive

SEARCHABLE: tuple[Field, ...] = tuple(
    f for f in FIELDS if f.searchable and f.kind not in (Kind.CHOICE, Kind.URL))
SNIPPET_FIELDS: tuple[str, ...] = tuple(
    f.name for f in SEARCHABLE if f.name == "summary" or f.kind is Kind.LONG)
SNIPPET_MAX = 8_000
CHUNK = 500
# Higher domains add text readers find a sheet by (published questions and answers): they
# register `source(sheet_ids, reader) -> {sheet id: text}` in app.extensions at init. The text
# joins the sheet's last long field, so every engine's schema stays the field declaration's.
EXTRA_TEXT = "kb_search_extra_text"
EXTRA_FIELD = SNIPPET_FIELDS[-1]


def extra_text(sheet_ids: list[int], reader: Any = None) -> dict[int, str]:
    found: dict[int, str] = {}
    for source in current_app.extensions.get(EXTRA_TEXT, []):
        for sheet_id, text in source(sheet_ids, reader or db.session).items():
            found[sheet_id] = f"{found.get(sheet_id, '')}\n{text}".strip()
    return found


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](url) -> text
_MARKUP = re.compile(r"(?m)^\s{0,3}(?:[#>]+|[-*+]|\d+[.)])\s+|[*_`~]{1,3}|<[^>]*>|^\s*[-*_]{3,}\s*$")


def markdown_text(source: str) -> str:
    """Markdown to text for the index and extracts, without a Markdown parser.

    Only words matter to the index, so links keep their text, markers go and HTML tags are
    dropped; kb.text.plain_text (a full CommonMark render) costs ~0.4 ms a field, which
    made rebuilds of large bases several times slower.
    """
    return " ".join(unescape(_MARKUP.sub(" ", _LINK.sub(r"\1", source))).split())


def field_text(f: Field, value: object) -> str:
    if f.kind is Kind.MULTI:  # readers search the labels ("garde d'enfants"), not the keys
        return "\n".join(f.labels(value))
    if f.kind is Kind.LIST:
        return "\n".join(str(v) for v in value or [])  # type: ignore[attr-defined]
    if f.kind is Kind.LONG:
        return markdown_text(str(value or ""))
    return str(value or "")


def stamp(revision_id: int, last_reviewed_at: object, interval: int, slug: str,
          facet_columns: tuple[object, ...] = ()) -> str:
    """What the index must agree with; compared by `kb index update` and `kb index check`.

    The facet columns are in it: a backfill that changes a sheet's territory without a new
    revision must still reach the index.
    """
    return "|".join(str(part) for part in (revision_id, last_reviewed_at, interval, slug,
                                           *facet_columns))


def _facet_columns(sheet: Sheet) -> tuple[object, ...]:
    return tuple(getattr(sheet, column) for column in FACET_COLUMNS)


def document(sheet: Sheet, extra: str = "") -> Document | None:
    """The sheet's index document, or None when readers may not find it. `extra`: text of
    higher domains (extra_text)."""
    revision = sheet.approved_revision
    if not sheet.is_published or revision is None:
        return None
    data = revision.data
    texts = {f.name: field_text(f, data.get(f.name)) for f in SEARCHABLE}
    # The territories by name too: "Finistère", "Bretagne", "Brest Métropole" find the sheet.
    place = derive(data)
    names = [t.name for t in (place.epci, place.department, place.region) if t]
    if names:
        texts["department"] = " ".join([place.department.code if place.department else "",
                                        *names]).strip()
    if extra:
        texts[EXTRA_FIELD] = f"{texts.get(EXTRA_FIELD, '')}\n{extra}".strip()
    snippet = " · ".join(texts[name] for name in SNIPPET_FIELDS if texts.get(name))
    vocabulary = sorted({w for text in texts.values() for w in words(text)
                         if 3 <= len(w) <= 40 and not w.isdigit()})
    return Document(
        sheet_id=sheet.id,
        revision_id=revision.id,
        stamp=stamp(revision.id, sheet.last_reviewed_at, sheet.review_interval_months, sheet.slug,
                    _facet_columns(sheet)),
        slug=sheet.slug,
        title=str(data.get("title", "")),
        fields=texts,
        snippet_source=snippet[:SNIPPET_MAX],
        vocabulary=vocabulary,
        facets=facet_values(sheet),
        updated_at=sheet.updated_at,
        review_due_at=sheet.review_due_at,
    )


def _with_relations() -> list[object]:
    return [selectinload(Sheet.tags), selectinload(Sheet.approved_revision)]


def load_documents(sheet_ids: list[int], session: Session | None = None
                   ) -> dict[int, Document | None]:
    """Current documents of these sheets (None: remove from the index)."""
    reader: Any = session or db.session
    found: dict[int, Document | None] = dict.fromkeys(sheet_ids)
    for start in range(0, len(sheet_ids), CHUNK):
        chunk = sheet_ids[start:start + CHUNK]
        sheets = reader.scalars(
            select(Sheet).where(Sheet.id.in_(chunk)).options(*_with_relations())  # type: ignore[arg-type]
        ).all()
        extras = extra_text(chunk, reader)
        for sheet in sheets:
            found[sheet.id] = document(sheet, extras.get(sheet.id, ""))
    return found


def published_stamps() -> dict[int, str]:
    """sheet id -> stamp of every sheet the index should hold."""
    rows = db.session.execute(
        published_sheets().with_only_columns(
            Sheet.id, Sheet.approved_revision_id, Sheet.last_reviewed_at,
            Sheet.review_interval_months, Sheet.slug,
            *(getattr(Sheet, column) for column in FACET_COLUMNS))
    ).all()
    return {row[0]: stamp(row[1] or 0, row[2], row[3], row[4], tuple(row[5:])) for row in rows}


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


def all_documents_in_background() -> Iterator[Document]:
    """all_documents() built by a forked process, so that a rebuild uses a second core while
    this one writes the index (building documents is about a fifth of a Whoosh rebuild).

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
