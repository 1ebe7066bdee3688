"""The pages an institution needs before it links to the site: mentions légales,
accessibilité, données personnelles, contact. Linked from every page's footer.

Their text is Markdown: `instance/pages/<page>.md` (KB_PAGES_DIR) when the operator wrote
one, else the default shipped in kb/pages/defaults/. Both may use the settings as
`{{ publisher }}`, `{{ contact }}`, `{{ contact_email }}`, `{{ hosting }}`,
`{{ accessibility_status }}`, `{{ site }}` (docs/pages.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, render_template, url_for
from flask_login import current_user

from kb.auth.permissions import Capability, can
from kb.text import render_page_markdown
from kb.urls import base_url

bp = Blueprint("pages", __name__)
DEFAULTS = Path(__file__).parent / "defaults"

# RGAA: the footer link says the status; only these three exist.
ACCESSIBILITY_STATUSES = ("totalement conforme", "partiellement conforme", "non conforme")


@dataclass(frozen=True)
class Page:
    slug: str  # the address, and the name of its Markdown file
    title: str
    footer: str  # the link in the footer ("{status}" is the accessibility status)


PAGES = (
    Page("mentions-legales", "Mentions légales", "Mentions légales"),
    Page("accessibilite", "Déclaration d'accessibilité", "Accessibilité : {status}"),
    Page("donnees-personnelles", "Données personnelles", "Données personnelles"),
    Page("contact", "Contact", "Contact"),
)
PAGES_BY_SLUG = {page.slug: page for page in PAGES}


def accessibility_status() -> str:
    status = str(current_app.config.get("KB_ACCESSIBILITY_STATUS") or "").strip().lower()
    return status if status in ACCESSIBILITY_STATUSES else "non conforme"


def settings() -> dict[str, str]:
    """The values the pages' `{{ name }}` placeholders take."""
    config = current_app.config
    email = str(config.get("KB_CONTACT_EMAIL") or "").strip()
    publisher = str(config.get("KB_PUBLISHER") or "").strip() or "l'éditeur de ce site"
    audit = str(config.get("KB_ACCESSIBILITY_AUDIT") or "").strip()
    return {
        "publisher": publisher,
        "publisher_capitalized": publisher[:1].upper() + publisher[1:],
        "contact_email": email,
        "contact": f"[{email}](mailto:{email})" if email else "l'adresse indiquée par l'éditeur",
        "hosting": str(config.get("KB_HOSTING") or "").strip()
        or "L'hébergeur du site est indiqué par son éditeur.",
        "accessibility_status": accessibility_status(),
        "accessibility_audit": audit or "Aucun audit de conformité n'a encore été réalisé : "
                                        "le site est donc déclaré non conforme tant qu'il n'a "
                                        "pas été audité.",
        "site": base_url(),
    }


def _source(page: Page) -> tuple[str, bool]:
    """The page's Markdown, and whether it is the operator's own."""
    own = Path(str(current_app.config.get("KB_PAGES_DIR") or "")) / f"{page.slug}.md"
    if own.is_file():
        return own.read_text(encoding="utf-8"), True
    return (DEFAULTS / f"{page.slug}.md").read_text(encoding="utf-8"), False


def fill(text: str, values: dict[str, str]) -> str:
    """`{{ name }}` -> its value; unknown names are left as they are."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m[1], m[0]), text)


def show(slug: str) -> str:
    page = PAGES_BY_SLUG[slug]
    source, own = _source(page)
    title = page.title
    heading = re.match(r"\s*#\s+(.+)\n", source)
    if heading:  # an operator's file may give its own title
        title, source = heading[1].strip(), source[heading.end():]
    return render_template("pages/page.html", title=title, own=own, page=page,
                           body=render_page_markdown(fill(source, settings())),
                           show_defaults_note=not own and can(current_user, Capability.ADMINISTER))


for _page in PAGES:  # one endpoint, one address per page: url_for("pages.show", slug="contact")
    bp.add_url_rule(f"/{_page.slug}", "show", show, defaults={"slug": _page.slug})


def footer_links() -> list[tuple[str, str]]:
    status = accessibility_status()
    return [(url_for("pages.show", slug=page.slug), page.footer.format(status=status))
            for page in PAGES]


def init_app(app: Flask) -> None:
    @app.context_processor
    def footer() -> dict[str, Any]:
        return {"footer_pages": footer_links}

