"""Tables of the PostgreSQL search backend: derived data, rebuilt from sheets at any time.

They are in the metadata so that tests' create_all/TRUNCATE and Alembic see them; on SQLite
they stay empty. PostgreSQL-only pieces (extensions, text search configuration, trigram index)
are created by PostgresBackend.ensure_schema().
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from kb.extensions import db

# Tables the SQLite search engine creates itself (FTS5 and its shadow tables included): their
# columns follow the field declaration, `kb index rebuild` recreates them. Alembic and the
# schema comparison leave them alone.
ENGINE_TABLES_PREFIX = "search_fts"


def owned_by_engine(name: str | None, type_: str = "table", *_: object) -> bool:
    return type_ == "table" and bool(name) and str(name).startswith(ENGINE_TABLES_PREFIX)


class TSVectorType(TypeDecorator[str]):
    """tsvector on PostgreSQL, text elsewhere (the table is unused there)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TSVECTOR())
        return dialect.type_descriptor(Text())


class SearchDocument(db.Model):  # type: ignore[name-defined]
    __tablename__ = "search_documents"

    sheet_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revision_id: Mapped[int] = mapped_column(Integer)
    stamp: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(200))
    tsv: Mapped[str] = mapped_column(TSVectorType())
    # Title, tags, actor, place, summary only: small enough to rank thousands of matches fast.
    tsv_head: Mapped[str | None] = mapped_column(TSVectorType(), nullable=True)
    snippet_source: Mapped[str] = mapped_column(Text, default="")
    scale: Mapped[str] = mapped_column(String(30), default="")
    actor_type: Mapped[str] = mapped_column(String(30), default="")
    department: Mapped[str] = mapped_column(String(80), default="")
    department_label: Mapped[str] = mapped_column(String(120), default="")
    city: Mapped[str] = mapped_column(String(120), default="")
    city_label: Mapped[str] = mapped_column(String(120), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    review_due_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_search_documents_tsv", "tsv", postgresql_using="gin"),)


class SearchDocumentTag(db.Model):  # type: ignore[name-defined]
    __tablename__ = "search_document_tags"

    sheet_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    slug: Mapped[str] = mapped_column(String(80), primary_key=True, index=True)
    name: Mapped[str] = mapped_column(String(60))


class SearchWord(db.Model):  # type: ignore[name-defined]
    """Vocabulary of indexed sheets (folded words): typo tolerance and suggestions."""

    __tablename__ = "search_words"

    word: Mapped[str] = mapped_column(String(40), primary_key=True)
    stem: Mapped[str] = mapped_column(String(40), index=True)
    lexeme: Mapped[str] = mapped_column(String(80), default="")  # what kb_french makes of it
