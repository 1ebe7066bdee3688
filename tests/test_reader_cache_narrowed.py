"""Narrowed listings (issue 27): a search or a tag page depends on a known set of sheets, so
its cached answer outlives publishes of other sheets, and never one that changes what it
shows (a member edited or withdrawn, a sheet that gains its word or its tag)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from kb.extensions import db
from kb.sheets.lifecycle import set_state
from kb.sheets.models import Sheet, SheetState
from kb.transaction import EVERY_SHEET, commit


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path: Any) -> dict[str, Any]:
    return {**app_config, "KB_CACHE": "filesystem", "KB_CACHE_DIR": str(tmp_path / "cache")}


def plain(title: str, summary: str, tags: list[str]) -> dict[str, Any]:
    """A sheet whose only words are these (the defaults speak of "accueil", "usagers"…)."""
    return {"title": title, "summary": summary, "context": "Contexte local.",
            "stakes": "Enjeux.", "method": "Méthode.", "results": "Résultats.",
            "actor_name": "Collectif", "partners": [], "tags": tags}


@pytest.fixture
def gardens(make_sheet):
    return [make_sheet(**plain(f"Potager partagé {n}", f"Des bacs au pied des immeubles {n}.",
                               ["jardins"])).sheet for n in (1, 2, 3)]


@pytest.fixture
def bikes(make_sheet):
    return make_sheet(**plain("Atelier de réparation", "Des cyclistes bénévoles.",
                              ["mobilite"])).sheet


def _publish(client, bearer, moderator, sheet: Sheet, **changes: Any) -> None:
    db.session.expire_all()
    sheet = db.session.get(Sheet, sheet.id)
    response = client.patch(f"/api/v1/sheets/{sheet.slug}", headers=bearer(moderator),
                            json={"base_revision": sheet.approved_revision_id, **changes})
    assert response.status_code == 200, response.get_json()


def _cache(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.headers["X-Cache"]


NARROWED = ["/recherche?q=potager", "/api/v1/search?q=potager", "/tags/jardins",
            "/embed/list?tag=jardins"]


def _kept(app, url: str) -> str:
    """A search is narrowed by an engine whose index a change is in, or moves the listing
    version once more when it is (SQLite's, PostgreSQL's; not Whoosh); tag pages by any."""
    from kb.search.service import get_backend

    narrowable = getattr(get_backend(app), "narrowable", False)
    return "hit" if narrowable or url.startswith(("/tags/", "/embed/")) else "miss"


@pytest.mark.parametrize("url", NARROWED)
def test_a_narrowed_listing_outlives_the_publish_of_a_sheet_it_does_not_show(
        app, client, bearer, moderator, gardens, bikes, url):
    assert _cache(client, url) == "miss"
    _publish(client, bearer, moderator, bikes, summary="Des cyclistes et des mécaniciens.")
    assert _cache(client, url) == _kept(app, url)
    assert _cache(client, "/fiches") == "miss"  # a listing that is not narrowed


@pytest.mark.parametrize("url", NARROWED)
def test_a_narrowed_listing_is_rendered_again_when_a_sheet_it_shows_changes(
        client, bearer, moderator, gardens, bikes, url):
    _cache(client, url)
    _publish(client, bearer, moderator, gardens[0], summary="Des bacs et une serre commune.")
    response = client.get(url)
    assert response.headers["X-Cache"] == "miss"
    if "/tags/" in url:  # search pages show an extract, not always the summary
        assert "une serre commune" in response.get_data(as_text=True)


@pytest.mark.parametrize("url, changes", [
    ("/recherche?q=potager", {"summary": "Des cyclistes, et un potager."}),
    ("/api/v1/search?q=potager", {"title": "Atelier de réparation et potager"}),
    ("/tags/jardins", {"tags": ["mobilite", "jardins"]}),
    ("/embed/list?tag=jardins", {"tags": ["jardins"]}),
])
def test_a_narrowed_listing_is_rendered_again_when_a_sheet_joins_it(
        client, bearer, moderator, gardens, bikes, url, changes):
    _cache(client, url)
    _publish(client, bearer, moderator, bikes, **changes)
    response = client.get(url)
    assert response.headers["X-Cache"] == "miss"
    assert "Atelier de r" in response.get_data(as_text=True)  # JSON escapes the é


@pytest.mark.parametrize("url, changes", [
    ("/recherche?q=potager", {"title": "Bacs partagés"}),
    ("/api/v1/search?q=potager", {"title": "Bacs partagés"}),
    ("/tags/jardins", {"tags": ["mobilite"]}),
    ("/embed/list?tag=jardins", {"tags": ["mobilite"]}),
])
def test_a_narrowed_listing_is_rendered_again_when_a_sheet_loses_its_word_or_tag(
        client, bearer, moderator, gardens, bikes, url, changes):
    _cache(client, url)
    _publish(client, bearer, moderator, gardens[0], **changes)
    response = client.get(url)
    assert response.headers["X-Cache"] == "miss"
    assert "Potager partagé 1" not in response.get_data(as_text=True)


@pytest.mark.parametrize("url", NARROWED)
def test_a_narrowed_listing_is_rendered_again_when_a_new_sheet_joins_or_one_leaves(
        client, make_sheet, moderator, gardens, bikes, url):
    _cache(client, url)
    make_sheet(**plain("Potager des écoles", "Un potager pour les classes.", ["jardins"]))
    response = client.get(url)
    assert response.headers["X-Cache"] == "miss"
    assert "Potager des " in response.get_data(as_text=True)
    set_state(db.session.get(Sheet, gardens[1].id), SheetState.ARCHIVED, moderator, "relecture")
    commit()
    response = client.get(url)
    assert response.headers["X-Cache"] == "miss"
    assert "Potager partagé 2" not in response.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/recherche?q=potagre",  # a corrected typo
                                 "/recherche?q=cyclistes",  # too few: a suggestion is looked for
                                 "/recherche?q=potager+-serre",  # narrowed on its positive words
                                 "/recherche?q=introuvable"])
def test_searches_that_the_vocabulary_shapes_are_not_kept_across_publishes(
        app, client, bearer, moderator, gardens, bikes, url):
    _cache(client, url)
    other = gardens[2] if "cyclistes" in url else bikes
    _publish(client, bearer, moderator, other, summary="Une autre phrase, sans rapport.")
    expected = _kept(app, url) if "-serre" in url else "miss"
    assert _cache(client, url) == expected


def _record(app, rows: list[tuple[int, int, datetime]]) -> None:
    with app.app_context():
        db.session.execute(text("DELETE FROM publication_changes"))
        for version, sheet_id, at in rows:
            db.session.execute(text("INSERT INTO publication_changes VALUES (:v, :s, :t)"),
                               {"v": version, "s": sheet_id, "t": at})
        db.session.commit()


def test_changes_are_read_only_when_the_record_covers_every_version_since_the_entry(app):
    from kb.cache import MAX_VALIDATED, changed_since

    at, later = datetime(2026, 12, 8, 9), datetime(2026, 12, 8, 10)
    _record(app, [(5, 1, at), (6, 2, later), (7, 3, later), (7, 4, later)])
    with app.app_context(), db.engine.connect() as connection:
        assert changed_since(connection, (5, at), 7) == {2, 3, 4}
        assert changed_since(connection, (5, later), 7) is None  # another base's version 5
        assert changed_since(connection, (5, at), 8) is None  # version 8 is not recorded
        assert changed_since(connection, (4, at), 7) is None  # nor is version 4
        assert changed_since(connection, (5, at), 5 + MAX_VALIDATED + 1) is None
    _record(app, [(5, 1, at), (6, EVERY_SHEET, later)])
    with app.app_context(), db.engine.connect() as connection:
        assert changed_since(connection, (5, at), 6) is None  # an import: any listing


def test_a_publish_records_the_sheets_that_moved_the_listing(app, make_sheet, gardens):
    from kb.transaction import LISTING, NAMED_CHANGES, mark_changed, versions

    def recorded(ids: Any) -> set[int]:
        """The sheets recorded for the version the commit of `ids` moved the listing to."""
        moved_to = versions()[(LISTING, 0)][0] + 1
        mark_changed(ids)
        commit()
        return set(db.session.scalars(text(
            "SELECT sheet_id FROM publication_changes WHERE listing_version = :v"),
            {"v": moved_to}))

    with app.app_context():
        assert recorded([gardens[0].id, gardens[1].id]) == {gardens[0].id, gardens[1].id}
        assert recorded(range(1, NAMED_CHANGES + 2)) == {EVERY_SHEET}


def test_narrowed_listings_always_show_what_a_fresh_rendering_shows(app, client, bearer,
                                                                     moderator, make_sheet):
    """Stateful: edits that add and remove words and tags, archives, new sheets; every cached
    search and tag page shows the sheets, totals, counts and extracts a fresh rendering does."""
    from cachelib import NullCache
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

    from kb.cache import Store

    words, tags = ["potager", "cyclistes", "compost"], ["jardins", "mobilite"]
    cached_store, fresh_store = app.extensions["kb.cache"], Store(NullCache())
    made: list[int] = []

    def fresh(url: str) -> Any:
        app.extensions["kb.cache"] = fresh_store
        try:
            return client.get(url)
        finally:
            app.extensions["kb.cache"] = cached_store

    class Listings(RuleBasedStateMachine):
        @initialize()
        def base(self) -> None:
            while len(made) < 4:
                n = len(made)
                made.append(make_sheet(**plain(
                    f"Fiche {n}", f"Texte {words[n % 3]} {words[(n + 1) % 3]}.",
                    [tags[n % 2]])).sheet.id)

        @rule(n=st.integers(0, 20), chosen=st.lists(st.sampled_from(words), max_size=2),
              tagged=st.lists(st.sampled_from(tags), min_size=1, max_size=2, unique=True))
        def edit(self, n: int, chosen: list[str], tagged: list[str]) -> None:
            sheet = db.session.get(Sheet, made[n % len(made)])
            if sheet.state == SheetState.ACTIVE:
                _publish(client, bearer, moderator, sheet, tags=tagged,
                         summary=f"Édition {n} {' '.join(chosen)}.")

        @rule(n=st.integers(0, 20), archived=st.booleans())
        def archive_or_restore(self, n: int, archived: bool) -> None:
            sheet = db.session.get(Sheet, made[n % len(made)])
            to = SheetState.ARCHIVED if archived else SheetState.ACTIVE
            if sheet.state != to:
                set_state(sheet, to, moderator, "relecture")
                commit()

        @rule(word=st.sampled_from(words), tag=st.sampled_from(tags))
        def add(self, word: str, tag: str) -> None:
            if len(made) < 8:
                made.append(make_sheet(**plain(f"Fiche {len(made)}", f"Nouvelle {word}.",
                                               [tag])).sheet.id)

        @rule(word=st.sampled_from(words))
        def search(self, word: str) -> None:
            db.session.expire_all()
            cached = client.get(f"/api/v1/search?q={word}").get_json()
            again = fresh(f"/api/v1/search?q={word}").get_json()
            assert _shown(cached) == _shown(again)

        @rule(tag=st.sampled_from(tags), url=st.sampled_from(["/tags/{}", "/embed/list?tag={}"]))
        def tag_listing(self, tag: str, url: str) -> None:
            db.session.expire_all()
            cached = client.get(url.format(tag)).get_data(as_text=True)
            assert cached == fresh(url.format(tag)).get_data(as_text=True)

    run_state_machine_as_test(Listings, settings=settings(
        max_examples=10, stateful_step_count=15, deadline=None,
        suppress_health_check=list(HealthCheck)))


def _shown(answer: dict[str, Any]) -> tuple[Any, ...]:
    """What a reader sees of a search, whatever the order of equal-looking ranks."""
    items = {item["slug"]: (item["title"], re.sub(r"\s+", " ", item["snippet"]))
             for item in answer["items"]}
    return items, answer["total"], answer["facets"]
