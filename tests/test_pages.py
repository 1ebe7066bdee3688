"""Server-rendered pages: what each kind of user sees, forms, history, security headers."""

import re

from kb import create_app
from kb.extensions import db
from kb.sheets import operations
from kb.sheets.models import Revision
from kb.transaction import commit

from .conftest import PASSWORD


def form_payload(revision, **changes):
    data = {**revision.data, **changes}
    payload = {k: "\n".join(v) if isinstance(v, list) else v for k, v in data.items()}
    payload["base_revision"] = str(revision.id)
    return payload


def test_home_lists_published_sheets_tags_and_scales(client, make_sheet, contributor):
    make_sheet(title="Accueil publié", tags=["accueil"])
    make_sheet(author=contributor, title="Brouillon secret")
    html = client.get("/").get_data(as_text=True)
    assert "Accueil publié" in html and "Brouillon secret" not in html
    assert 'href="/tags/accueil"' in html and 'href="/echelle/intercommunalite"' in html
    assert '<html lang="fr">' in html and 'role="search"' in html


def test_anonymous_reader_never_sees_a_pending_revision(client, make_sheet, contributor,
                                                        login):
    new = make_sheet(author=contributor, title="Nouvelle fiche en attente")
    slug = new.sheet.slug
    for url in (f"/fiches/{slug}", f"/fiches/{slug}?revision={new.id}"):
        page = client.get(url).get_data(as_text=True)  # "en cours de relecture", nothing of it
        assert "en cours de relecture" in page and "Nouvelle fiche" not in page
    assert client.get(f"/fiches/{slug}/historique").status_code == 404
    assert "Nouvelle fiche" not in client.get("/fiches").get_data(as_text=True)

    published = make_sheet(title="Fiche publiée", results="Texte approuvé")
    edit = operations.edit_sheet(published.sheet, {"results": "Texte en attente"}, contributor,
                                 published.id)
    commit()
    page = client.get(f"/fiches/{published.sheet.slug}").get_data(as_text=True)
    assert "Texte approuvé" in page and "Texte en attente" not in page
    assert client.get(f"/fiches/{published.sheet.slug}?revision={edit.id}").status_code == 404
    assert client.get(f"/fiches/{published.sheet.slug}/diff?to={edit.id}").status_code == 404

    login(contributor)
    own = client.get(f"/fiches/{slug}").get_data(as_text=True)
    assert "Nouvelle fiche en attente" in own and "en attente de relecture" in own
    mine = client.get(f"/fiches/{published.sheet.slug}").get_data(as_text=True)
    assert "voir la version en attente" in mine


def test_contributor_creates_a_pending_sheet_through_the_form(client, contributor, login):
    login(contributor)
    response = client.post("/fiches/nouvelle", data={
        "title": "Ma fiche", "scale": "commune", "tags": "accueil\nnumérique",
        "context": "**Contexte**"})
    assert response.status_code == 302
    revision = db.session.query(Revision).one()
    assert revision.status == "pending" and revision.data["tags"] == ["accueil", "numérique"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<strong>Contexte</strong>" in page


def test_form_errors_are_shown_next_to_fields(client, contributor, login):
    login(contributor)
    response = client.post("/fiches/nouvelle", data={"title": "", "website": "ftp://x"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Ce champ est obligatoire." in html
    assert 'aria-invalid="true"' in html and "http://" in html


def test_creating_requires_login(client):
    response = client.get("/fiches/nouvelle")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


def test_form_fields_come_from_the_declaration_with_hints(client, contributor, login):
    login(contributor)
    html = client.get("/fiches/nouvelle").get_data(as_text=True)
    for label in ("Titre", "Méthodologie mise en place", "Échelle d&#39;action",
                  "Comment contacter cette initiative ?", "Pour aller plus loin"):
        assert label in html
    assert 'for="title"' in html and "Un titre qui dit l&#39;action" in html


def test_edit_form_saves_a_revision_from_its_base(client, make_sheet, moderator, login):
    revision = make_sheet()
    login(moderator)
    response = client.post(f"/fiches/{revision.sheet.slug}/modifier",
                           data=form_payload(revision, city="Morlaix"))
    assert response.status_code == 302
    assert revision.sheet.city == "Morlaix"


def test_conflicting_form_edit_shows_both_versions_and_keeps_the_users_text(
        client, make_sheet, moderator, login):
    revision = make_sheet(results="Texte d'origine")
    operations.edit_sheet(revision.sheet, {"results": "Texte de l'autre"}, moderator, revision.id)
    commit()
    login(moderator)
    response = client.post(f"/fiches/{revision.sheet.slug}/modifier",
                           data=form_payload(revision, results="Mon texte précieux"))
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Mon texte précieux" in html and "Texte de l&#39;autre" in html
    head = revision.sheet.approved_revision  # the moderator's head: the published text
    assert f'name="base_revision" type="hidden" value="{head.id}"' in html
    # Submitting the kept text on the new base succeeds.
    again = client.post(f"/fiches/{revision.sheet.slug}/modifier",
                        data={**form_payload(revision, results="Mon texte précieux"),
                              "base_revision": str(head.id)})
    assert again.status_code == 302
    assert revision.sheet.approved_revision.data["results"] == "Mon texte précieux"


def test_history_diff_and_restore(client, make_sheet, moderator, login):
    first = make_sheet(results="Un accueil chaleureux")
    second = operations.edit_sheet(first.sheet, {"results": "Un accueil inconditionnel"},
                                   moderator, first.id, "précision")
    commit()
    slug = first.sheet.slug
    history = client.get(f"/fiches/{slug}/historique").get_data(as_text=True)
    assert "précision" in history and f"n° {first.id}" in history
    diff = client.get(f"/fiches/{slug}/diff?from={first.id}&to={second.id}").get_data(as_text=True)
    assert "<del>chaleureux</del>" in diff and "<ins>inconditionnel</ins>" in diff
    assert "Réalisations" in diff and "Ville" not in diff
    assert client.get(f"/fiches/{slug}/diff").status_code == 400

    login(moderator)
    response = client.post(f"/fiches/{slug}/revisions/{first.id}/restaurer")
    assert response.status_code == 302
    assert first.sheet.approved_revision.data["results"] == "Un accueil chaleureux"
    assert db.session.query(Revision).count() == 3


def test_moderator_approves_and_rejects_from_the_page(client, make_sheet, contributor,
                                                      moderator, login):
    pending = make_sheet(author=contributor)
    login(contributor)
    assert client.post(f"/revisions/{pending.id}/approuver").status_code == 403
    login(moderator)
    page = client.get(f"/fiches/{pending.sheet.slug}").get_data(as_text=True)
    assert "Approuver" in page and "Motif du refus" in page
    client.post(f"/revisions/{pending.id}/approuver")
    assert pending.status == "approved"
    login(None)
    assert client.get(f"/fiches/{pending.sheet.slug}").status_code == 200

    other = make_sheet(author=contributor, title="Autre")
    login(moderator)
    client.post(f"/revisions/{other.id}/refuser", data={"reason": "Doublon"})
    assert other.status == "rejected" and other.review_reason == "Doublon"
    login(contributor)
    assert "Doublon" in client.get("/mes-fiches").get_data(as_text=True)


def test_register_login_logout(client):
    response = client.post("/inscription", data={
        "display_name": "Nina", "email": "nina@example.org", "password": PASSWORD,
        "confirm": PASSWORD})
    assert response.status_code == 302  # to "check your mail"; not logged in before confirming
    assert "Se connecter" in client.get("/").get_data(as_text=True)
    bad = client.post("/connexion", data={"email": "nina@example.org", "password": "faux"})
    assert "incorrect" in bad.get_data(as_text=True)
    good = client.post("/connexion?next=/mes-fiches",
                       data={"email": "nina@example.org", "password": PASSWORD})
    assert good.headers["Location"] == "/mes-fiches"
    assert "Nina" in client.get("/").get_data(as_text=True)
    client.post("/deconnexion")
    assert "Se connecter" in client.get("/").get_data(as_text=True)
    evil = client.post("/connexion?next=//evil.example",
                       data={"email": "nina@example.org", "password": PASSWORD})
    assert evil.headers["Location"] == "/"


def test_every_form_post_needs_a_csrf_token(app_config, make_user):
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    client = app.test_client()
    with app.app_context():
        response = client.post("/connexion", data={"email": "a@b.c", "password": "x"})
        assert response.status_code == 400
        page = client.get("/connexion").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        ok = client.post("/connexion", data={"email": "a@b.c", "password": "x",
                                             "csrf_token": token})
        assert ok.status_code == 200


def test_session_cookie_is_httponly_and_samesite_lax(client, contributor):
    response = client.post("/connexion", data={"email": "contrib@example.org",
                                               "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_pages_refuse_to_be_framed(client, make_sheet):
    slug = make_sheet().sheet.slug
    for url in ("/", f"/fiches/{slug}", "/api/v1/sheets"):
        response = client.get(url)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_unknown_page_is_a_french_404(client):
    response = client.get("/fiches/inexistante")
    assert response.status_code == 404 and "Cette fiche n&#39;existe pas." in response.get_data(
        as_text=True)
    assert "Cette page n&#39;existe pas." in client.get("/nulle-part").get_data(as_text=True)


def test_sheet_page_renders_fields_safely(client, make_sheet):
    slug = make_sheet(context="<script>alert(1)</script> **gras**").sheet.slug
    html = client.get(f"/fiches/{slug}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "<strong>gras</strong>" in html
    assert "Méthodologie mise en place" in html and "Agence DETEA" in html


def test_listing_filters_by_tag_and_scale(client, make_sheet):
    make_sheet(title="Un", tags=["accueil"], scale="commune")
    make_sheet(title="Deux", tags=["numérique"], scale="quartier")
    html = client.get("/fiches?tag=numerique").get_data(as_text=True)
    assert "Deux" in html and ">Un<" not in html
    assert "<strong>1 fiche</strong>" in client.get("/fiches?scale=commune").get_data(as_text=True)


def test_review_never_redirects_to_another_site(client, make_sheet, contributor, moderator,
                                                login):
    pending = make_sheet(author=contributor)
    login(moderator)
    for evil in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        response = client.post(f"/revisions/{pending.id}/approuver", data={"next": evil})
        assert response.headers["Location"].startswith("/fiches/")
    kept = make_sheet(author=contributor, title="Autre")
    response = client.post(f"/revisions/{kept.id}/approuver", data={"next": "/moderation"})
    assert response.headers["Location"] == "/moderation"


def test_behind_a_proxy_the_client_address_comes_from_x_forwarded_for(app_config):
    from flask import request

    seen = []
    for proxies, expected in ((0, "10.0.0.1"), (1, "203.0.113.7")):
        app = create_app({**app_config, "KB_PROXIES": proxies})
        app.before_request(lambda: seen.append(request.remote_addr))
        app.test_client().get("/connexion", headers={"X-Forwarded-For": "203.0.113.7"},
                              environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert seen[-1] == expected
