"""A sheet's address must not reveal a title that was never approved.

Found by tests/test_trust_properties.py (UnreviewedTitleInSlug). The slug is built from the
title of the first revision when the sheet is created, before any review. When that revision is
never approved (its author corrects the title, a moderator approves the correction and rejects
or leaves the first one), the published sheet keeps an address made of the unreviewed title: in
every link, the sitemap, the exports and the feeds. Now the first publication gives the sheet
an address made from the published title (kb.sheets.operations.publish).
"""

from __future__ import annotations

from tests.conftest import sheet_data

SECRET = "Perrine Secretdraft"  # e.g. a name that the author took out before review


def test_published_address_does_not_carry_a_never_approved_title(
        client, make_user, bearer, moderator) -> None:
    author = make_user("contributor")
    created = client.post("/api/v1/sheets", headers=bearer(author),
                          json=sheet_data(title=f"Accueil chez {SECRET}"))
    assert created.status_code == 202
    slug, first = created.json["slug"], created.json["revision"]
    edited = client.patch(f"/api/v1/sheets/{slug}", headers=bearer(author),
                          json={"title": "Accueil en mairie de Brest", "base_revision": first})
    assert edited.status_code == 202
    approved = client.post(f"/api/v1/revisions/{edited.json['revision']}/approve",
                           headers=bearer(moderator))
    assert approved.status_code == 200
    # The first proposal was settled with the approval of its author's later one (its chain):
    # rejecting it now is "already decided"; either way it is never the published text.
    rejected = client.post(f"/api/v1/revisions/{first}/reject", headers=bearer(moderator),
                           json={"reason": "Nom d'une personne"})
    assert rejected.status_code in (200, 409)

    for url in ("/fiches", "/sitemap.xml", "/donnees/fiches.jsonl", "/api/v1/sheets"):
        body = client.get(url).get_data(as_text=True)
        assert "Accueil en mairie de Brest" in body or "accueil-en-mairie" in body, url
        assert "secretdraft" not in body.lower(), url
