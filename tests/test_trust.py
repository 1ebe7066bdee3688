"""The review model (issue 9), through real HTTP answers: nobody reads another person's draft,
publishing at once publishes only one's own changes, a stale proposal is merged at review time
with per-field choices. Cases 1, 2a, 2b and 3 are the attacks the issue describes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kb.extensions import db
from kb.sheets import operations
from kb.sheets.models import Revision
from kb.transaction import commit
from tests.test_pages import form_payload

PHONE = "Zorglub 06 12 34 56 78"  # private text in someone else's pending proposal
SECRET = "Brouillonsecret"


def _revision_count() -> int:
    return db.session.scalar(select(func.count(Revision.id))) or 0


def _public_outputs(client, slug: str) -> str:
    """Everything an anonymous reader can fetch about the sheet (search: what it finds)."""
    found = client.get("/api/v1/search?q=Zorglub").get_json()["items"]
    return "\n".join([client.get(url).get_data(as_text=True) for url in (
        f"/fiches/{slug}", f"/api/v1/sheets/{slug}", "/donnees/fiches.csv",
        "/donnees/fiches.jsonl", f"/embed/sheets/{slug}", "/donnees/flux/modifications.atom")]
        + [f"search finds {item['slug']}" for item in found])


@pytest.fixture
def pending_phone(client, login, make_sheet, make_user):
    """A published sheet and an untrusted contributor's pending edit adding a phone number."""
    published = make_sheet(contacts="Écrire à la mairie.")
    author = make_user(email="untrusted@example.org")
    login(author)
    response = client.post(f"/fiches/{published.sheet.slug}/modifier",
                           data=form_payload(published, contacts=PHONE))
    assert response.status_code == 302
    pending = db.session.scalars(select(Revision).where(Revision.author_id == author.id)).one()
    assert pending.status == "pending"
    login(None)
    return published, pending


# --- case 1: publishing at once publishes only one's own changes ----------------------------

@pytest.mark.parametrize("role", ["trusted", "moderator"])
def test_case1_a_publishing_edit_never_publishes_someone_elses_pending_edit(
        client, login, make_user, pending_phone, role):
    published, pending = pending_phone
    slug = published.sheet.slug
    editor = make_user("contributor", trusted=True) if role == "trusted" else make_user(role)
    login(editor)
    form = client.get(f"/fiches/{slug}/modifier").get_data(as_text=True)
    assert PHONE not in form and f'value="{published.id}"' in form  # starts from the approved text
    saved = client.post(f"/fiches/{slug}/modifier",
                        data=form_payload(published, summary="Résumé revu par un pair"))
    assert saved.status_code == 302
    login(None)
    outputs = _public_outputs(client, slug)
    assert "Résumé revu par un pair" in outputs
    assert "Zorglub" not in outputs
    db.session.refresh(pending)
    assert pending.status == "pending"  # others' proposals stay pending, untouched


def test_case1_through_the_api_too(client, make_user, bearer, pending_phone):
    published, pending = pending_phone
    slug = published.sheet.slug
    response = client.patch(f"/api/v1/sheets/{slug}", headers=bearer(make_user(trusted=True)),
                            json={"base_revision": published.id, "city": "Morlaix"})
    assert response.status_code == 200 and response.get_json()["status"] == "approved"
    outputs = _public_outputs(client, slug)
    assert "Morlaix" in outputs and "Zorglub" not in outputs
    db.session.refresh(pending)
    assert pending.status == "pending"


def test_a_reviewer_editing_is_told_others_proposals_stay_pending(client, login, moderator,
                                                                  pending_phone):
    published, _ = pending_phone
    login(moderator)
    page = client.get(f"/fiches/{published.sheet.slug}/modifier").get_data(as_text=True)
    assert "1 proposition d'autres contributeurs attend relecture" in page


# --- merge at review time -------------------------------------------------------------------

def test_approving_a_stale_proposal_merges_disjoint_changes(client, login, moderator,
                                                             make_user, pending_phone):
    published, pending = pending_phone
    slug = published.sheet.slug
    login(make_user("contributor", trusted=True))
    client.post(f"/fiches/{slug}/modifier", data=form_payload(published, summary="Nouveau résumé"))
    login(moderator)
    review = client.get(f"/moderation/revisions/{pending.id}").get_data(as_text=True)
    assert "La version publiée a changé depuis cette proposition" in review
    assert "Nouveau depuis la proposition" in review and "Résumé" in review
    assert 'name="choice-' not in review  # nothing overlaps: nothing to choose
    response = client.post(f"/moderation/revisions/{pending.id}/approuver")
    assert response.status_code == 302
    login(None)
    outputs = _public_outputs(client, slug)
    assert "Nouveau résumé" in outputs and "Zorglub" in outputs  # both changes, nothing lost
    assert f"search finds {slug}" in outputs
    sheet = published.sheet
    db.session.refresh(sheet)
    merged = sheet.approved_revision
    assert merged.id not in (pending.id, published.id)
    assert merged.base_revision_id == pending.id and merged.author_id == moderator.id
    assert db.session.get(Revision, pending.id).status == "approved"


def _overlapping(make_sheet, make_user, moderator):
    """A proposal and a later published edit that both changed `results`; the proposal also
    changed `city`."""
    first = make_sheet(results="Texte d'origine")
    author = make_user(email="proposant@example.org")
    proposal = operations.edit_sheet(first.sheet, {"results": "Texte proposé", "city": "Quimper"},
                                     author, first.id)
    newer = operations.edit_sheet(first.sheet, {"results": "Texte publié entre-temps"},
                                  moderator, first.id)
    commit()
    assert proposal.status == "pending" and newer.status == "approved"
    return first.sheet, proposal, newer


def test_overlapping_fields_are_shown_side_by_side_and_chosen_per_field(
        client, login, make_sheet, make_user, moderator):
    sheet, proposal, newer = _overlapping(make_sheet, make_user, moderator)
    login(moderator)
    review = client.get(f"/moderation/revisions/{proposal.id}").get_data(as_text=True)
    assert "Texte proposé" in review and "Texte publié entre-temps" in review
    assert 'name="choice-results" value="published"' in review
    assert 'name="choice-results" value="proposal"' in review

    # Without a choice: nothing is overwritten silently.
    refused = client.post(f"/moderation/revisions/{proposal.id}/approuver")
    assert refused.status_code == 409 and "choisissez champ par champ" in refused.get_data(
        as_text=True)
    db.session.refresh(sheet)
    assert sheet.approved_revision_id == newer.id
    assert db.session.get(Revision, proposal.id).status == "pending"

    done = client.post(f"/moderation/revisions/{proposal.id}/approuver",
                       data={"choice-results": "proposal"})
    assert done.status_code == 302
    db.session.refresh(sheet)
    assert sheet.approved_revision.data["results"] == "Texte proposé"
    assert sheet.approved_revision.data["city"] == "Quimper"


def test_the_api_answers_409_with_the_overlapping_fields_and_takes_choices(
        client, bearer, make_sheet, make_user, moderator):
    sheet, proposal, newer = _overlapping(make_sheet, make_user, moderator)
    headers = bearer(moderator)
    url = f"/api/v1/revisions/{proposal.id}/approve"
    conflict = client.post(url, headers=headers)
    assert conflict.status_code == 409
    body = conflict.get_json()
    assert body["error"] == "conflict" and body["fields"] == ["results"]
    assert body["published_revision"] == newer.id
    assert body["proposal"] == {"results": "Texte proposé"}
    assert body["published"] == {"results": "Texte publié entre-temps"}
    assert client.post(url, headers=headers, json={"choices": {"results": "peut-être"}}
                       ).status_code == 422
    done = client.post(url, headers=headers, json={"choices": {"results": "published"}})
    assert done.status_code == 200
    published = client.get(f"/api/v1/sheets/{sheet.slug}").get_json()
    assert published["results"] == "Texte publié entre-temps"  # the moderator kept it
    assert published["city"] == "Quimper"  # the disjoint change is merged
    assert published["revision"] == done.get_json()["published_revision"]
    # The proposal's text that was kept out never becomes public through its revision.
    assert done.get_json()["status"] == "merged"
    assert client.get(f"/fiches/{sheet.slug}?revision={proposal.id}").status_code == 404
    assert client.get(f"/api/v1/sheets/{sheet.slug}?revision={proposal.id}").status_code == 404
    assert client.get(f"/api/v1/sheets/{sheet.slug}?revision={proposal.id}",
                      headers=bearer(proposal.author)).get_json()["status"] == "merged"
    assert client.post(url, headers=headers).status_code == 409  # decided once


def test_bulk_approval_leaves_overlapping_proposals_for_the_review_page(
        client, login, make_sheet, make_user, moderator):
    sheet, proposal, newer = _overlapping(make_sheet, make_user, moderator)
    login(moderator)
    response = client.post("/moderation/revisions/lot",
                           data={"action": "approuver", "revision": str(proposal.id)},
                           follow_redirects=True)
    assert "champ par champ" in response.get_data(as_text=True)
    assert db.session.get(Revision, proposal.id).status == "pending"


# --- case 2a: conflict answers show only what the caller may see ------------------------------

@pytest.fixture
def hidden_draft(make_sheet, make_user, moderator):
    """A0 published, then A1 published by a moderator, then X's pending proposal on A1 (the
    latest revision of the sheet) holding a secret."""
    first = make_sheet(results="Texte A0")
    newer = operations.edit_sheet(first.sheet, {"results": "Texte A1"}, moderator, first.id)
    x = make_user(email="x@example.org")
    draft = operations.edit_sheet(first.sheet, {"results": SECRET}, x, newer.id)
    commit()
    return first, newer, draft


def test_case2a_api_conflict_shows_the_approved_text_never_another_persons_draft(
        client, make_user, bearer, hidden_draft):
    first, newer, draft = hidden_draft
    response = client.patch(f"/api/v1/sheets/{first.sheet.slug}",
                            headers=bearer(make_user(email="y@example.org")),
                            json={"base_revision": first.id, "results": "Texte de Y"})
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert SECRET not in body
    assert response.get_json()["current_revision"] == newer.id
    assert response.get_json()["current"] == {"results": "Texte A1"}


def test_case2a_web_conflict_page_shows_the_approved_text_never_another_persons_draft(
        client, login, make_user, hidden_draft):
    first, newer, draft = hidden_draft
    login(make_user(email="y@example.org"))
    response = client.post(f"/fiches/{first.sheet.slug}/modifier",
                           data=form_payload(first, results="Texte de Y"))
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert SECRET not in html and "Texte A1" in html and "Texte de Y" in html
    assert f'name="base_revision" type="hidden" value="{newer.id}"' in html


# --- case 2b: a proposal may only start from what its author may see --------------------------

def test_case2b_another_persons_pending_or_rejected_revision_is_not_a_base(
        client, login, make_user, make_sheet, bearer, moderator, hidden_draft):
    first, newer, draft = hidden_draft
    slug = first.sheet.slug
    x = draft.author
    rejected = operations.edit_sheet(first.sheet, {"city": SECRET + "bis"}, x, draft.id)
    operations.reject_revision(rejected, moderator, "Non")
    other_sheet = make_sheet(title="Une autre fiche")
    commit()
    y = make_user(email="y@example.org")
    before = _revision_count()
    for base in (draft.id, rejected.id, other_sheet.id, 99_999):
        response = client.patch(f"/api/v1/sheets/{slug}", headers=bearer(y),
                                json={"base_revision": base, "summary": "Y"})
        assert response.status_code == 422, base
        assert "base_revision" in response.get_json()["fields"]
        assert SECRET not in response.get_data(as_text=True)
    login(y)
    response = client.post(f"/fiches/{slug}/modifier",
                           data={**form_payload(newer, summary="Y"), "base_revision": str(draft.id)})
    assert response.status_code == 422 and SECRET not in response.get_data(as_text=True)
    assert _revision_count() == before  # nothing was copied into a revision Y could read


def test_case2b_a_moderator_cannot_build_on_or_restore_someone_elses_draft(
        client, login, moderator, bearer, hidden_draft):
    first, newer, draft = hidden_draft
    slug = first.sheet.slug
    response = client.patch(f"/api/v1/sheets/{slug}", headers=bearer(moderator),
                            json={"base_revision": draft.id, "summary": "Modération"})
    assert response.status_code == 422
    login(moderator)
    restore = client.post(f"/fiches/{slug}/revisions/{draft.id}/restaurer")
    assert restore.status_code == 403
    login(None)
    assert SECRET not in client.get(f"/fiches/{slug}").get_data(as_text=True)


def test_an_author_builds_on_their_own_pending_proposal(client, login, make_user, make_sheet):
    first = make_sheet(results="Texte publié")
    author = make_user()
    login(author)
    client.post(f"/fiches/{first.sheet.slug}/modifier",
                data=form_payload(first, results="Ma première proposition"))
    mine = db.session.scalars(select(Revision).where(Revision.author_id == author.id)).one()
    form = client.get(f"/fiches/{first.sheet.slug}/modifier").get_data(as_text=True)
    assert "Ma première proposition" in form and f'value="{mine.id}"' in form
    assert "Vous modifiez votre proposition en attente" in form
    client.post(f"/fiches/{first.sheet.slug}/modifier",
                data=form_payload(mine, city="Quimper"))
    second = db.session.scalars(select(Revision).where(Revision.author_id == author.id)
                                .order_by(Revision.id.desc())).first()
    assert second.base_revision_id == mine.id
    assert second.data["results"] == "Ma première proposition" and second.data["city"] == "Quimper"


# --- case 3: the same visibility rule for GET and POST ---------------------------------------

def test_case3_another_contributors_never_approved_sheet_is_404_on_every_route(
        client, login, make_sheet, make_user, bearer):
    x = make_user(email="x@example.org")
    draft = make_sheet(author=x, title="Brouillon de X", results=SECRET)
    slug = draft.sheet.slug
    y = make_user(email="y@example.org")
    before = _revision_count()
    login(y)
    # Its address says only that a sheet is being reviewed (issue 25): none of its text.
    waiting = client.get(f"/fiches/{slug}")
    assert "en cours de relecture" in waiting.get_data(as_text=True)
    assert SECRET not in waiting.get_data(as_text=True) and "Brouillon" not in \
        waiting.get_data(as_text=True).replace(slug, "")
    answers = [
        client.get(f"/fiches/{slug}/modifier"),
        client.post(f"/fiches/{slug}/modifier", data=form_payload(draft, results="Y")),
        client.post(f"/fiches/{slug}/modifier",
                    data={**form_payload(draft, results="Y"), "base_revision": ""}),
        client.get(f"/fiches/{slug}/historique"),
        client.get(f"/fiches/{slug}/diff?to={draft.id}"),
        client.post(f"/fiches/{slug}/revisions/{draft.id}/restaurer"),
        client.patch(f"/api/v1/sheets/{slug}", headers=bearer(y),
                     json={"base_revision": draft.id, "results": "Y"}),
        client.get(f"/api/v1/sheets/{slug}", headers=bearer(y)),
    ]
    for response in answers:
        assert response.status_code == 404, response.request.path
        assert SECRET not in response.get_data(as_text=True)
    assert _revision_count() == before
    login(x)
    assert SECRET in client.get(f"/fiches/{slug}").get_data(as_text=True)


def test_a_reviewer_reviews_a_first_proposal_before_editing_it(client, login, make_sheet,
                                                               make_user, moderator):
    draft = make_sheet(author=make_user(), title="Première proposition")
    login(moderator)
    assert client.get(f"/fiches/{draft.sheet.slug}").status_code == 200  # reviewers see it
    response = client.get(f"/fiches/{draft.sheet.slug}/modifier")
    assert response.status_code == 409 and "première relecture" in response.get_data(as_text=True)
