"""The public history shows actions and dates; moderators' reasons only when marked public;
names only when the person chose one, never one derived from an e-mail address."""

from __future__ import annotations

from sqlalchemy import select

from kb.extensions import db
from kb.moderation import operations as moderation
from kb.moderation.models import AuditEntry
from kb.sheets import operations
from kb.transaction import commit


def _without_display_name(make_user, role: str, email: str):
    user = make_user(role, email=email)
    user.display_name = ""
    commit()
    return user


def test_history_shows_actions_and_dates_but_no_internal_reason_nor_email_name(
        client, login, make_user, make_sheet) -> None:
    moderator = _without_display_name(make_user, "moderator", "jean.dupont@admin.example")
    author = _without_display_name(make_user, "contributor", "marie.curie@example.org")
    revision = operations.create_sheet({"title": "Fiche suivie", "scale": "commune"}, author)
    commit()
    moderation.approve(revision, moderator)
    moderation.hide_sheet(revision.sheet, moderator, "Plainte de M. Martin au téléphone")
    moderation.restore_sheet(revision.sheet, moderator, "Vérifié avec la mairie de Brest")
    commit()
    slug = revision.sheet.slug

    page = client.get(f"/fiches/{slug}/historique").get_data(as_text=True)
    assert "fiche masquée" in page and "fiche rétablie" in page and "révision approuvée" in page
    assert "Plainte de M. Martin" not in page and "mairie de Brest" not in page
    assert "jean.dupont" not in page and "marie.curie" not in page
    assert "contributeur" in page and "l&#39;équipe de modération" in page

    login(make_user())  # another contributor sees the same
    page = client.get(f"/fiches/{slug}/historique").get_data(as_text=True)
    assert "Plainte de M. Martin" not in page

    login(moderator)
    page = client.get(f"/fiches/{slug}/historique").get_data(as_text=True)
    assert "Plainte de M. Martin" in page and "interne" in page


def test_a_reason_marked_public_is_shown(client, login, make_sheet, moderator) -> None:
    slug = make_sheet(title="Fiche en double").sheet.slug
    login(moderator)
    response = client.post(f"/moderation/fiches/{slug}/masquer",
                           data={"reason": "Doublon de la fiche de Quimper", "public_reason": "y"})
    assert response.status_code == 302
    client.post(f"/moderation/fiches/{slug}/retablir", data={"reason": "Erreur de ma part"})
    login(None)
    page = client.get(f"/fiches/{slug}/historique").get_data(as_text=True)
    assert "Doublon de la fiche de Quimper" in page
    assert "Erreur de ma part" not in page


def test_reject_reasons_are_private_by_default_and_public_when_ticked(
        client, login, make_sheet, contributor, moderator) -> None:
    published = make_sheet(title="Fiche relue")
    private = operations.edit_sheet(published.sheet, {"summary": "Proposition A"}, contributor,
                                    published.id)
    commit()
    login(moderator)
    form = {"reason": "Texte copié d'un site commercial"}
    assert client.post(f"/moderation/revisions/{private.id}/refuser", data=form).status_code == 302
    public = operations.edit_sheet(published.sheet, {"summary": "Proposition B"}, contributor,
                                   published.id)
    commit()
    form = {"reason": "Merci, mais hors du champ de la base", "public_reason": "y"}
    assert client.post(f"/moderation/revisions/{public.id}/refuser", data=form).status_code == 302
    entries = {e.revision_id: e for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "reject"))}
    assert entries[public.id].reason_is_public and not entries[private.id].reason_is_public

    # The author reads both reasons (they were e-mailed to them anyway).
    login(contributor)
    page = client.get(f"/fiches/{published.sheet.slug}/historique").get_data(as_text=True)
    assert "Texte copié" in page and "hors du champ" in page


def test_a_display_name_that_is_an_email_address_is_not_shown(client, make_user) -> None:
    author = make_user("moderator", email="a.b@example.org", name="a.b@example.org")
    revision = operations.create_sheet({"title": "Fiche au nom masqué"}, author)
    commit()
    page = client.get(f"/fiches/{revision.sheet.slug}/historique").get_data(as_text=True)
    assert "a.b@example.org" not in page and "a.b" not in page
