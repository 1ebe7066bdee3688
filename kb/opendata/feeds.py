"""Atom feeds of approved content: recent changes, new sheets, per tag, per scale.

Written by feedgenerator (Django's feed writer, maintained standalone): it escapes XML and
writes RFC 3339 dates. Entry ids are tag: URIs that never change once an entry is out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import feedgenerator
from markupsafe import escape
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from sqlalchemy.sql import Select

from kb.extensions import db
from kb.sheets.fields import FIELDS_BY_NAME
from kb.sheets.models import Revision, RevisionStatus, Sheet, published_sheets
from kb.sheets.serialize import sheet_url
from kb.urls import base_url

FEED_SIZE = 50
TAG_DATE = "2026"  # the date of our tag: URIs (RFC 4151); never change it, ids must stay stable


@dataclass
class FeedEntry:
    title: str
    link: str
    unique_id: str
    updated: datetime
    published: datetime
    summary: str
    categories: list[str]


def tag_uri(kind: str, key: Any) -> str:
    host = urlsplit(base_url()).hostname or "localhost"
    return f"tag:{host},{TAG_DATE}:{kind}:{key}"


def _summary_html(data: dict[str, Any], extra: str = "") -> str:
    # <summary type="html">: plain text must be HTML-escaped once before XML escaping.
    parts = [str(escape(extra))] if extra else []
    if data.get("summary"):
        parts.append(str(escape(data["summary"])))
    facts = [data.get("actor_name", ""), data.get("city", ""),
             FIELDS_BY_NAME["scale"].choice_label(data.get("scale", ""))]
    if any(facts):
        parts.append(str(escape(" · ".join(f for f in facts if f))))
    return "".join(f"<p>{p}</p>" for p in parts)


def sheet_entries(query: Select[Any]) -> list[FeedEntry]:
    """One entry per published sheet (its id is the sheet: an update replaces the entry)."""
    sheets = db.session.scalars(query.options(selectinload(Sheet.approved_revision))
                                .limit(FEED_SIZE))
    entries = []
    for sheet in sheets:
        data = sheet.approved_revision.data if sheet.approved_revision else {}
        entries.append(FeedEntry(
            title=data.get("title", sheet.title), link=sheet_url(sheet),
            unique_id=tag_uri("sheet", sheet.id), updated=sheet.updated_at,
            published=sheet.created_at, summary=_summary_html(data),
            categories=list(data.get("tags", []))))
    return entries


def new_sheets_entries() -> list[FeedEntry]:
    return sheet_entries(published_sheets().order_by(Sheet.created_at.desc(), Sheet.id.desc()))


def changes_entries() -> list[FeedEntry]:
    """Approved revisions of published sheets, the latest approvals first."""
    published_ids = published_sheets().with_only_columns(Sheet.id)
    when = func.coalesce(Revision.reviewed_at, Revision.created_at)
    revisions = db.session.scalars(
        select(Revision)
        .where(Revision.status == RevisionStatus.APPROVED.value,
               Revision.sheet_id.in_(published_ids))
        .options(selectinload(Revision.sheet))
        .order_by(when.desc(), Revision.id.desc()).limit(FEED_SIZE))
    entries = []
    for revision in revisions:
        data = revision.data
        approved_at = revision.reviewed_at or revision.created_at
        comment = revision.comment or "Modification"
        entries.append(FeedEntry(
            title=f"{data.get('title', '')} — {comment}",
            link=f"{sheet_url(revision.sheet)}?revision={revision.id}",
            unique_id=tag_uri("revision", revision.id), updated=approved_at,
            published=approved_at, summary=_summary_html(data, comment),
            categories=list(data.get("tags", []))))
    return entries


def atom(title: str, subtitle: str, link: str, self_url: str, feed_key: str,
         entries: Iterable[FeedEntry]) -> str:
    feed = feedgenerator.Atom1Feed(
        title=f"{title} · Fiches initiatives", link=link, description=subtitle,
        subtitle=subtitle, language="fr", feed_url=self_url, feed_guid=tag_uri("feed", feed_key),
        author_name="Fiches initiatives", author_link=base_url() + "/")
    for entry in entries:
        feed.add_item(
            title=entry.title, link=entry.link, description=entry.summary,
            unique_id=entry.unique_id, updateddate=entry.updated, pubdate=entry.published,
            categories=entry.categories)
    return str(feed.writeString("utf-8"))
