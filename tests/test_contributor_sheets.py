"""Issue 25, "A contributor's own sheets": a new sheet's link before review, one row per sheet
in "Mes contributions", one waiting proposal per author and sheet, signing in at confirmation."""

from __future__ import annotations

from sqlalchemy import func, select

from kb.extensions import db
from kb.sheets import operations
from kb.sheets.models import Revision, RevisionStatus
from kb.transaction import commit
from tests.conftest import sheet_data
from tests.test_pages import form_payload


def _pending_count(sheet_id: int) -> int:
    return db.session.scalar(select(func.count(Revision.id)).where(
        Revision.sheet_id == sheet_id, Revision.status == RevisionStatus.PENDING.value)) or 0


def test_a_new_sheet_waiting_for_review_tells_others_so_and_shows_none_of_its_content(
        client, login, contributor, make_user):
    first = operations.create_sheet(sheet_data(title="Garde solidaire Perpignan",
                                               summary="Résumé confidentiel",
                                               context="Contexte caché"), contributor)
    commit()
    slug = first.sheet.slug
    for visitor in (None, make_user()):
        login(visitor)
        response = client.get(f"/fiches/{slug}")
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "en cours de relecture" in html
        for secret in ("Garde solidaire", "Résumé confidentiel", "Contexte caché"):
            assert secret not in html.replace(slug, "")
        assert 'name="robots" content="noindex"' in html
    login(contributor)  # the author still reads their proposal
    assert "Garde solidaire Perpignan" in client.get(f"/fiches/{slug}").get_data(as_text=True)
    login(None)
    assert client.get("/fiches/pas-de-fiche-ici").status_code == 404


def test_a_refused_new_sheet_is_not_announced_as_waiting(client, login, contributor, moderator):
    first = operations.create_sheet(sheet_data(title="Refusée"), contributor)
    operations.reject_revision(first, moderator, "hors sujet")
    commit()
    assert client.get(f"/fiches/{first.sheet.slug}").status_code == 404


def test_publish_edit_twice_one_row_and_one_waiting_proposal(client, login, contributor):
    login(contributor)
    first = operations.create_sheet(sheet_data(title="Navette rurale"), contributor)
    commit()
    slug = first.sheet.slug
    for n, text in enumerate(("Première reprise", "Deuxième reprise")):
        head = db.session.scalar(select(Revision).where(Revision.sheet_id == first.sheet_id)
                                 .order_by(Revision.id.desc()).limit(1))
        response = client.post(f"/fiches/{slug}/modifier",
                               data=form_payload(head, results=text, comment=f"reprise {n}"))
        assert response.status_code == 302
    assert _pending_count(first.sheet_id) == 1
    html = client.get("/mes-fiches").get_data(as_text=True)
    assert html.count('class="contribution-title"') == 1
    assert html.count("Navette rurale") == 1
    assert "en attente de relecture" in html and "<details>" in html
    assert "3 révisions" in html


def test_mes_contributions_shows_published_and_modifications_waiting(
        client, login, contributor, make_sheet, make_user):
    published = make_sheet(title="Épicerie solidaire")  # by a moderator
    operations.edit_sheet(published.sheet, {"results": "Mes chiffres"}, contributor, published.id)
    other = make_sheet(author=make_user(trusted=True), title="Atelier vélo")
    commit()
    operations.edit_sheet(other.sheet, {"results": "Ma reprise"}, other.author,
                          other.sheet.approved_revision_id)
    commit()
    login(contributor)
    html = client.get("/mes-fiches").get_data(as_text=True)
    assert "modifications en attente de relecture" in html
    login(other.author)
    html = client.get("/mes-fiches").get_data(as_text=True)
    assert html.count('class="contribution-title"') == 1
    assert "state-publiee" in html and "2 révisions" in html
    assert "publiée, remplacée depuis" in html and "version publiée" in html


def test_publier_une_fiche_leads_an_anonymous_reader_to_sign_up_then_to_the_form_signed_in(
        client, smtp):
    from tests.test_accounts import link_in

    home = client.get("/").get_data(as_text=True)
    assert '<a href="/inscription?next=/fiches/nouvelle">Publier une fiche</a>' in home
    assert client.get("/inscription?next=/fiches/nouvelle").status_code == 200
    response = client.post("/inscription?next=/fiches/nouvelle", data={
        "display_name": "Nina Martin", "email": "nina@example.org",
        "password": "mot-de-passe-solide", "confirm": "mot-de-passe-solide"})
    assert response.status_code == 302
    path = link_in(smtp.to("nina@example.org")[0], "/inscription/confirmer/")
    confirmed = client.post(path)
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/fiches/nouvelle"
    form = client.get("/fiches/nouvelle")
    assert form.status_code == 200 and 'name="title"' in form.get_data(as_text=True)
