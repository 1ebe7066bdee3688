"""Details a reader or an API client meets (issue 20, "Smaller"): French numbers, typed API
errors, literal filters, diffs of revisions that do not exist, links that are links, `next=`
values, the README's configuration table."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from markdown_it import MarkdownIt

from kb.auth.models import User
from kb.sheets import operations
from kb.sheets.models import Revision
from kb.transaction import commit
from kb.wording import french_number
from tests.conftest import PASSWORD
from tests.smtp_server import Inbox
from tests.test_questions import _answered_question

NNBSP = "\u202f"


# --- 1. numbers written the French way ---------------------------------------------------------

def test_numbers_are_written_the_french_way() -> None:
    assert french_number(0, 1) == "0,0"
    assert french_number(2.25, 1) in ("2,2", "2,3")
    assert french_number(12345) == f"12{NNBSP}345"
    assert french_number(1234.5, 1) == f"1{NNBSP}234,5"
    assert french_number(0.85) == "0,85"


def test_median_answer_time_reads_with_a_decimal_comma(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        make_sheet: Callable[..., Revision], make_user: Callable[..., User]) -> None:
    team = make_user("contributor", trusted=True, email="porteuse@example.org")
    asker = make_user("contributor", email="asker@example.org")
    sheet = make_sheet(author=team, contacts="Écrire à equipe@mairie-exemple.fr.")
    _answered_question(client, login, smtp, sheet.sheet.slug, team, asker, False, False)
    login(make_user("moderator"))
    for url in ("/moderation/questions", "/moderation/tableau-de-bord"):
        page = client.get(url).get_data(as_text=True)
        assert "0,0 h" in page and "0.0 h" not in page, url


def test_commune_choices_write_populations_with_french_thousands(
        client: FlaskClient, login: Callable[[User | None], None],
        make_user: Callable[..., User]) -> None:
    login(make_user("contributor", trusted=True))
    form = {"title": "Une fiche à Saint-Denis", "summary": "Résumé", "actor_name": "Mairie",
            "actor_type": "commune", "scale": "commune", "city": "Saint-Denis"}
    page = client.post("/fiches/nouvelle", data=form).get_data(as_text=True)
    populations = re.findall(r"([\d\u202f ,.]+) habitants", page)
    assert populations, "the ambiguous commune is offered with its population"
    assert any(NNBSP in p for p in populations)
    assert not any(re.search(r"\d[ ,.]\d{3}\b", p) for p in populations)


# --- 2. the API says which mistake was made ---------------------------------------------------

@pytest.mark.parametrize("value,problem", [
    ("abc", "doit être un entier"), (1.5, "doit être un entier"), (True, "doit être un entier"),
    (None, "obligatoire")])
def test_base_revision_of_the_wrong_type_is_not_said_missing(
        client: FlaskClient, make_sheet: Callable[..., Revision], make_user: Callable[..., User],
        bearer: Callable[[User], dict[str, str]], value: Any, problem: str) -> None:
    revision = make_sheet()
    body: dict[str, Any] = {"results": "Autre chose."}
    if value is not None:
        body["base_revision"] = value
    response = client.patch(f"/api/v1/sheets/{revision.sheet.slug}", json=body,
                            headers=bearer(make_user("contributor", trusted=True)))
    assert response.status_code == 400
    assert response.json is not None
    assert response.json["fields"] == {"base_revision": problem}
    assert "base_revision" in response.json["message"]


# --- 3. "%" and "_" are characters, not wildcards ---------------------------------------------

def test_a_tag_filter_of_punctuation_matches_no_sheet_instead_of_every_sheet(
        client: FlaskClient, make_sheet: Callable[..., Revision]) -> None:
    make_sheet(tags=["accueil"])
    for url in ("/fiches?tag=%25", "/recherche?tag=%25", "/fiches?tag=*"):
        page = client.get(url).get_data(as_text=True)
        assert "Accueil inconditionnel en mairie" not in page, url
    for url in ("/api/v1/sheets?tag=%25", "/api/v1/search?tag=%25"):
        assert client.get(url).json["total"] == 0, url  # type: ignore[index]
    assert client.get("/api/v1/sheets?tag=accueil").json["total"] == 1  # type: ignore[index]


def test_moderators_searches_take_percent_and_underscore_literally(
        client: FlaskClient, login: Callable[[User | None], None],
        make_sheet: Callable[..., Revision], make_user: Callable[..., User]) -> None:
    author = make_user("contributor", email="ana@example.org", name="Ana Lyse")
    make_sheet(author=author, title="Proposition d'Ana")
    login(make_user("moderator"))
    assert "Proposition d&#39;Ana" in client.get("/moderation?auteur=ana").get_data(as_text=True)
    for needle in ("%", "_", "a_a"):
        page = client.get(f"/moderation?auteur={needle}").get_data(as_text=True)
        assert "Proposition d&#39;Ana" not in page, needle
    login(make_user("admin"))
    assert "ana@example.org" in client.get("/moderation/utilisateurs?q=ana").get_data(as_text=True)
    for needle in ("%25", "_", "an_"):
        page = client.get(f"/moderation/utilisateurs?q={needle}").get_data(as_text=True)
        assert "ana@example.org" not in page, needle


# --- 4. a diff of a revision that does not exist ----------------------------------------------

def test_a_diff_with_a_revision_that_is_no_id_answers_404_not_another_diff(
        client: FlaskClient, make_sheet: Callable[..., Revision],
        make_user: Callable[..., User]) -> None:
    first = make_sheet()
    second = operations.edit_sheet(first.sheet, {"results": "Mieux."}, make_user("moderator"),
                                   first.id)
    commit()
    slug = first.sheet.slug
    assert client.get(f"/fiches/{slug}/diff?from={first.id}&to={second.id}").status_code == 200
    for bad in ("abc", "0", "-1", "99999999999999999999999", "1e3"):
        assert client.get(f"/fiches/{slug}/diff?from={bad}&to={second.id}").status_code == 404, bad
        assert client.get(f"/fiches/{slug}/diff?from={first.id}&to={bad}").status_code == 404, bad
    assert client.get(f"/fiches/{slug}/diff?from={first.id}").status_code == 400


# --- 5. a link is an address ------------------------------------------------------------------

@pytest.mark.parametrize("website", [
    'https://example.org/a"onmouseover="x', "https://example.org/deux mots",
    "https://example.org/<b>", "https://example.org/\\chemin"])
def test_website_with_quotes_or_spaces_is_refused_naming_the_field(
        client: FlaskClient, make_user: Callable[..., User],
        bearer: Callable[[User], dict[str, str]], website: str) -> None:
    from tests.conftest import sheet_data

    response = client.post("/api/v1/sheets", json=sheet_data(website=website),
                           headers=bearer(make_user("contributor", trusted=True)))
    assert response.status_code in (400, 422)
    message = response.json["fields"]["website"]  # type: ignore[index]
    assert "Lien web" in message and ("espace" in message or "guillemet" in message)


def test_website_form_field_says_why_the_address_is_refused(
        client: FlaskClient, login: Callable[[User | None], None],
        make_user: Callable[..., User]) -> None:
    from tests.conftest import sheet_data

    login(make_user("contributor", trusted=True))
    form = {k: ", ".join(v) if isinstance(v, list) else v
            for k, v in sheet_data(website='https://example.org/"x"').items()}
    response = client.post("/fiches/nouvelle", data=form)
    assert response.status_code == 422
    assert "ni espace ni guillemet" in response.get_data(as_text=True)


# --- 6. next= values ----------------------------------------------------------------------------

def _login_next(page: str) -> str:
    href = re.search(r'href="(/connexion\?next=[^"]*)"', page)
    assert href, "the page offers to sign in"
    return parse_qs(urlsplit(href.group(1).replace("&amp;", "&")).query)["next"][0]


def test_next_keeps_the_query_string_exactly_and_adds_no_stray_question_mark(
        client: FlaskClient, make_user: Callable[..., User]) -> None:
    assert _login_next(client.get("/fiches").get_data(as_text=True)) == "/fiches"
    query = "/recherche?q=caf%C3%A9+%3F&tag="
    assert _login_next(client.get(query).get_data(as_text=True)) == query
    user = make_user("contributor")
    response = client.post("/connexion", query_string={"next": query},
                           data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == query


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example", "https://evil.example/",
                                    "javascript:alert(1)"])
def test_next_still_refuses_other_sites(client: FlaskClient, make_user: Callable[..., User],
                                        target: str) -> None:
    user = make_user("contributor")
    response = client.post("/connexion", query_string={"next": target},
                           data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/"


# --- 9. README ----------------------------------------------------------------------------------

def test_readme_configuration_is_one_table_with_every_variable() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    section = section.split("\n### ", 1)[0]
    tokens = MarkdownIt().enable("table").parse(section)
    assert [t.type for t in tokens].count("table_open") == 1
    rows = [t for t in tokens if t.type == "tr_open"]
    documented = set(re.findall(r"^\| `(KB_[A-Z_]+)`", section, re.M))
    assert len(rows) - 1 == section.count("\n| `KB_") + section.startswith("| `KB_")
    assert {"KB_BASE_URL", "KB_MAX_BODY", "KB_MAX_QUERY"} <= documented
    last_row = max(m.end() for m in re.finditer(r"^\|.*$", section, re.M))
    assert section.index("Strict-Transport-Security") > last_row  # said after the table
