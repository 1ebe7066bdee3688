"""Writing a sheet: sections a person can follow, limits said and counted, a Markdown preview.

(The draft kept in the browser and the live counts are JavaScript: tests/test_browser_pages.py.)
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from markupsafe import escape
from sqlalchemy import func, select

from kb.extensions import db
from kb.sheets.fields import FIELDS, SECTIONS, Kind
from kb.sheets.models import Sheet
from tests.conftest import sheet_data


def _form(data: dict[str, Any], **extra: str) -> dict[str, str]:
    form = {k: "\n".join(v) if isinstance(v, list) else v for k, v in data.items()}
    return {**form, **extra}


def _fieldsets(page: str) -> list[tuple[str, list[str]]]:
    """(legend, field names) of each fieldset of the sheet form, in order."""
    form = page[page.index('<form method="post" class="sheet-form"'):]
    found = []
    for block in re.findall(r'<fieldset class="form-section".*?</fieldset>', form, re.S):
        legend = re.sub(r"<[^>]+>", " ", re.search(r"<legend>(.*?)</legend>", block, re.S).group(1))
        # A field of several checkboxes (thématiques, publics) is one name, once; so is a
        # field of records (indicators-0-label, indicators-0-value...).
        names = list(dict.fromkeys(
            re.findall(r'<(?:input|textarea|select)[^>]*\bname="([a-z_]+)(?:-\d+-[a-z_]+)?"',
                       block)))
        found.append((unescape(" ".join(legend.split())), names))
    return found


def test_every_field_belongs_to_a_declared_section():
    keys = [key for key, _, _ in SECTIONS]
    assert len(set(keys)) == len(keys)
    assert all(f.section in keys for f in FIELDS), [f.name for f in FIELDS if f.section not in keys]
    assert all(any(f.section == key for f in FIELDS) for key in keys), "an empty section"


def test_the_form_is_grouped_in_the_declared_sections(client, login, contributor):
    login(contributor)
    page = client.get("/fiches/nouvelle").get_data(as_text=True)
    groups = _fieldsets(page)
    assert [legend for legend, _ in groups[:-1]] == [
        f"{n} sur {len(SECTIONS)} {title}" for n, (_, title, _) in enumerate(SECTIONS, 1)]
    for (key, _, _), (_, names) in zip(SECTIONS, groups, strict=False):
        assert names == [f.name for f in FIELDS if f.section == key]
    assert groups[-1] == ("Envoyer", ["comment"])
    # Every field once, and a table of the parts to jump to on a phone.
    assert sorted(n for _, names in groups for n in names) == sorted([f.name for f in FIELDS] + ["comment"])
    for key, title, _ in SECTIONS:
        assert f'<a href="#partie-{key}">{escape(title)}</a>' in page


def test_limited_fields_show_their_limit_and_the_browser_does_not_cut(client, login, contributor):
    login(contributor)
    page = client.get("/fiches/nouvelle").get_data(as_text=True)
    title_input = re.search(r'<input[^>]*id="title"[^>]*>', page).group(0)
    assert 'data-max="200"' in title_input
    assert "maxlength" not in title_input  # a pasted text would be cut without a word
    assert 'aria-describedby="title-hint title-count"' in title_input
    assert '<p class="char-count" id="title-count">0 / 200 caractères</p>' in page
    for f in FIELDS:
        if f.section == "territoire" and f.kind is Kind.SHORT:
            continue  # the place is chosen from the register (kb/territories), not typed freely
        if f.kind in (Kind.SHORT, Kind.URL) or (f.kind is Kind.LONG and f.max_length <= 2000):
            assert f'id="{f.name}-count"' in page, f.name
    assert 'id="context-count"' not in page  # 20,000 characters: no counter
    assert 'id="comment-count"' in page


def test_a_title_too_long_is_refused_with_its_count_and_kept_whole(client, login, contributor):
    login(contributor)
    title = "Accueil " + "x" * 200  # 208 characters
    response = client.post("/fiches/nouvelle", data=_form(sheet_data(title=title)))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "208 caractères, pour 200 au plus : retirez-en 8." in page
    assert f'value="{title}"' in page  # the text is all there, to shorten as the writer likes
    assert "208 / 200 caractères : 8 de trop" in page
    assert db.session.scalar(select(func.count(Sheet.id))) == 0


def test_limits_count_line_breaks_and_spaces_like_the_browser(client, login, contributor):
    login(contributor)
    contacts = "a\r\n" * 1000  # 2,000 characters in the browser, 3,000 bytes sent
    response = client.post("/fiches/nouvelle", data=_form(sheet_data(contacts=contacts + "   ")))
    assert response.status_code == 302


def test_the_preview_renders_one_text_through_the_sanitiser(client, login, contributor):
    login(contributor)
    response = client.post("/fiches/apercu", data={
        "preview_field": "method", "text": "- **Immersion**\n- <script>alert(1)</script>"})
    assert response.status_code == 200
    html = response.get_json()["html"]
    assert "<li><strong>Immersion</strong></li>" in html
    assert "<script" not in html


def test_the_preview_refuses_fields_without_one_and_strangers(client, login, contributor):
    assert client.post("/fiches/apercu", data={"preview_field": "method", "text": "x"}).status_code == 302
    login(contributor)
    refused = client.post("/fiches/apercu", data={"preview_field": "title", "text": "x"})
    assert refused.status_code == 400
    assert "Ce champ n&#39;a pas d&#39;aperçu." in refused.get_data(as_text=True)


def test_without_javascript_the_preview_returns_the_filled_form(client, login, contributor):
    login(contributor)
    token = "0123456789abcdef0123456789abcdef"
    response = client.post("/fiches/apercu", data=_form(
        sheet_data(context="Un **contexte** précis."), submission=token))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<div class="preview" id="context-preview">' in page
    assert "<p>Un <strong>contexte</strong> précis.</p>" in page
    assert 'action="/fiches/nouvelle"' in page  # sending goes on to the creation
    assert f'value="{token}"' in page  # the same form: sending it twice still saves once
    assert "Un **contexte** précis." in unescape(page)
    assert db.session.scalar(select(func.count(Sheet.id))) == 0


def test_the_preview_of_an_edit_returns_to_the_edit(client, login, contributor, make_sheet):
    sheet = make_sheet().sheet
    login(contributor)
    response = client.post(f"/fiches/apercu?fiche={sheet.slug}", data=_form(
        sheet_data(results="*Trois* guichets."), base_revision=str(sheet.approved_revision_id)))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'action="/fiches/{sheet.slug}/modifier"' in page
    assert "<em>Trois</em> guichets." in page
    assert client.post("/fiches/apercu?fiche=inconnue", data={}).status_code == 404
