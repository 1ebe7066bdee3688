"""Markdown to safe HTML, and plain text for indexing and snippets.

Markdown is rendered with CommonMark, raw HTML off, then sanitised by one nh3 allowlist:
this is the only place user text becomes HTML.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from html import unescape
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from slugify import slugify as _slugify

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "ul", "ol", "li", "blockquote", "code", "pre",
    "h3", "h4", "h5", "h6", "a", "hr",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}


LINK_REL = "nofollow ugc noopener"

# What a reader would click in a sheet's text: web addresses, e-mail addresses, French phone
# numbers (0X XX XX XX XX, +33 X XX XX XX XX, with spaces, dots or dashes). Matched on the
# escaped text nh3 gives back, so a URL's "&" is already "&amp;".
_LINKABLE = re.compile(
    r"(?P<url>\bhttps?://(?:(?!&lt;|&gt;|&quot;|&#)[^\s<>\"'])+?)"
    r"(?=[.,;:!?»)\]]*(?:\s|<|$|&nbsp;|&lt;|&gt;|&quot;|&#))"
    r"|(?P<email>(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,}\b)"
    r"|(?P<phone>(?<![\w+])(?:\+33[\s.-]?|0)[1-9](?:[\s.-]?\d\d){4}(?![\w]))")
_TAG = re.compile(r"(<[^>]*>)")
_NOT_LINKED_IN = {"a", "code", "pre"}  # existing links and code keep their text as written


def _link(match: re.Match[str]) -> str:
    text = match.group()
    if match.group("url"):
        return f'<a href="{text}" rel="{LINK_REL}">{text}</a>'
    if match.group("email"):
        return f'<a href="mailto:{text}">{text}</a>'
    digits = re.sub(r"[^\d+]", "", text)
    return f'<a href="tel:{digits}">{text}</a>'


def _linkify(html: str) -> str:
    """Addresses, e-mails and phone numbers in the text of sanitised HTML become links, never
    inside a link, inline code or a code block."""
    out: list[str] = []
    inside = 0
    for token in _TAG.split(html):
        if token.startswith("<"):
            name = re.match(r"</?([a-z0-9]+)", token)
            if name and name.group(1) in _NOT_LINKED_IN and not token.endswith("/>"):
                inside += -1 if token.startswith("</") else 1
            out.append(token)
        elif inside > 0 or not token:
            out.append(token)
        else:
            out.append(_LINKABLE.sub(_link, token))
    return "".join(out)


def sanitize(html: str) -> str:
    """The one place user HTML is made safe (nh3 allowlist), then given its links: what is
    written as an address, an e-mail or a phone number is clickable."""
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel=LINK_REL,
    )
    return _linkify(clean)


# A sheet page renders each of its fields on every uncached view; the same published text is
# rendered again and again. Rendering is a pure function of the source, so its result is kept
# per worker, for sources up to MEMO_MAX_CHARS (bounded memory whatever people type).
MEMO_MAX_CHARS = 8_000
MEMO_ENTRIES = 1_024


def render_markdown(source: str) -> Markup:
    source = source or ""
    return _render_memo(source) if len(source) <= MEMO_MAX_CHARS else _render(source)


def _render(source: str) -> Markup:
    # Headings of user text start at h3: the page keeps h1 (title) and h2 (field labels).
    html = _markdown.render(source)
    html = re.sub(r"<(/?)h[12]>", r"<\1h3>", html)
    return Markup(sanitize(html))


_render_memo = lru_cache(maxsize=MEMO_ENTRIES)(_render)


def render_page_markdown(source: str) -> Markup:
    """Markdown of the site's own pages (kb/pages, written by the operator): sections from h2,
    the page has the h1. Sanitised like everything else."""
    html = re.sub(r"<(/?)h1>", r"<\1h2>", _markdown.render(source or ""))
    return Markup(nh3.clean(html, tags=ALLOWED_TAGS | {"h2"}, attributes=ALLOWED_ATTRIBUTES,
                            url_schemes={"http", "https", "mailto"}))


def plain_text(source: str) -> str:
    """Markdown source to plain text (for indexing, snippets, similarity)."""
    html = _markdown.render(source or "")
    text = re.sub(r"<[^>]+>", " ", html)
    return " ".join(unescape(text).split())


# The combining accents of Latin text (U+034F, the grapheme joiner, has no combining class and
# stays), and what is known to hold no combining character: Latin letters, general
# punctuation (’ « » …), currency signs.
_LATIN_ACCENTS = re.compile("[\u0300-\u034e\u0350-\u036f]+")
_BEYOND_LATIN = re.compile("[^\x00-\u02ff\u034f\u2000-\u20cf]")


def fold(text: str) -> str:
    """Case- and accent-fold: 'Échelle' -> 'echelle'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    if decomposed.isascii():
        return decomposed
    stripped = _LATIN_ACCENTS.sub("", decomposed)
    if not _BEYOND_LATIN.search(stripped):
        return stripped  # the same as below, at C speed
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=16_384)
def slugify(text: str, max_length: int = 100) -> str:
    """'Médiation numérique' -> 'mediation-numerique'. Cached: python-slugify looks up its
    transliteration module on every call, which dominated large imports."""
    # The typographic apostrophe separates words like the straight one: "D’une" -> "d-une".
    return _slugify(text.replace("’", "'"), max_length=max_length, word_boundary=True)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(value: Any) -> Any:
    """`value` (decoded JSON) with each lone surrogate ("\\ud800": not valid UTF-8, no page or
    file can encode it) replaced by U+FFFD. Input refuses them (kb/limits.py); this repairs what
    was stored before (`kb repair-text`)."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    return value
