"""Anonymous readers' cached answers (issue 27): keyed on the publication versions that
kb/transaction.py bumps in the commit of a change, never stale, never personal."""

from __future__ import annotations

from contextlib import contextmanager
from html import unescape
from typing import Any

import pytest
from sqlalchemy import event

from kb.extensions import db
from kb.sheets.lifecycle import set_state
from kb.sheets.models import SheetState
from kb.transaction import LISTING, SHEET, commit, versions


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path: Any) -> dict[str, Any]:
    # The default store of one machine: files shared by its workers, bounded.
    return {**app_config, "KB_CACHE": "filesystem", "KB_CACHE_DIR": str(tmp_path / "cache")}


@pytest.fixture
def brest(make_sheet):
    return make_sheet(title="Accueil à Brest", summary="Texte d'origine.").sheet


def _read(client, url: str, **kwargs: Any):
    response = client.get(url, **kwargs)
    assert response.status_code == 200, (url, response.status_code)
    return response


def _publish_edit(client, bearer, moderator, sheet, summary: str) -> None:
    revision = sheet.approved_revision_id
    response = client.patch(f"/api/v1/sheets/{sheet.slug}", headers=bearer(moderator),
                            json={"base_revision": revision, "summary": summary})
    assert response.status_code == 200, response.get_json()


def test_a_publish_bumps_the_sheet_and_listing_versions_in_its_commit(app, brest, make_sheet):
    before = versions([brest.id])
    other = make_sheet(title="Numérique à Quimper").sheet
    after = versions([brest.id, other.id])
    # + 1 in the commit; an index written after it (PostgreSQL) moves it once more.
    assert after[(LISTING, 0)][0] > before[(LISTING, 0)][0]
    assert after[(SHEET, brest.id)] == before[(SHEET, brest.id)]  # untouched sheet: same
    assert after[(SHEET, other.id)][0] == 1


def test_a_rolled_back_change_bumps_nothing(app, brest, moderator):
    before = versions([brest.id])
    set_state(brest, SheetState.ARCHIVED, moderator, "fermée")
    db.session.rollback()
    assert versions([brest.id]) == before


@pytest.mark.parametrize("url", [
    "/fiches/{slug}", "/embed/sheets/{slug}", "/api/v1/sheets/{slug}",
    "/", "/fiches", "/recherche?q=brest", "/api/v1/search?q=brest", "/api/v1/sheets",
    "/embed/list?tag=accueil", "/tags/accueil",
])
def test_a_cached_answer_is_never_served_after_the_publish_that_changes_it(
        client, bearer, moderator, brest, url):
    url = url.format(slug=brest.slug)
    first = _read(client, url)
    assert first.headers["X-Cache"] == "miss"
    assert _read(client, url).headers["X-Cache"] == "hit"  # cached meanwhile
    _publish_edit(client, bearer, moderator, brest, "Texte republie ce jour.")
    after = _read(client, url)
    assert after.headers["X-Cache"] == "miss"
    assert after.get_data() != first.get_data()
    if "{slug}" in url or "brest" in url:
        assert "Texte republie ce jour." in after.get_data(as_text=True)


def test_a_sheet_page_stays_cached_when_another_sheet_is_published(client, brest, make_sheet):
    _read(client, f"/fiches/{brest.slug}")
    make_sheet(title="Numérique à Quimper")
    assert _read(client, f"/fiches/{brest.slug}").headers["X-Cache"] == "hit"
    assert _read(client, "/fiches").headers["X-Cache"] == "miss"  # listings moved


def _hide(sheet, moderator):
    from kb.moderation.operations import hide_sheet

    hide_sheet(sheet, moderator, "signalements")


def _archive(sheet, moderator):
    set_state(sheet, SheetState.ARCHIVED, moderator, "l'action est terminée")


def _merge(sheet, moderator):
    from kb.duplicates.operations import merge
    from kb.sheets import operations
    from tests.conftest import sheet_data

    survivor = operations.create_sheet(sheet_data(title="Accueil à Brest (fiche gardée)"),
                                       moderator).sheet
    commit()
    merge(survivor, sheet, {}, moderator)


@pytest.mark.parametrize("withdraw", [_hide, _archive, _merge])
def test_a_withdrawn_merged_or_hidden_sheet_is_never_served_from_the_cache(
        client, moderator, brest, withdraw):
    urls = [f"/fiches/{brest.slug}", f"/api/v1/sheets/{brest.slug}",
            f"/embed/sheets/{brest.slug}", "/fiches", "/recherche?q=origine"]
    cached = {url: _read(client, url).get_data() for url in urls}
    withdraw(brest, moderator)
    commit()
    for url in urls:
        response = client.get(url)
        assert response.headers.get("X-Cache") != "hit", url
        assert response.status_code != 200 or response.get_data() != cached[url], url
    listing = client.get("/fiches").get_data(as_text=True)
    assert "Accueil à Brest</a>" not in listing or withdraw is _merge
    assert "Texte d'origine." not in client.get("/recherche?q=origine").get_data(as_text=True) \
        or withdraw is _merge


def test_a_draft_is_never_served_to_anonymous_readers(client, login, contributor, brest,
                                                       make_sheet):
    draft = make_sheet(author=contributor, title="Brouillon de Paimpol").sheet
    login(contributor)
    own = client.get(f"/fiches/{draft.slug}")
    assert own.status_code == 200 and "Brouillon de Paimpol" in own.get_data(as_text=True)
    assert "X-Cache" not in own.headers and own.headers["Cache-Control"].startswith("private")
    login(None)
    client.delete_cookie("session")
    for _ in range(2):  # twice: neither the first answer nor a cached one shows the draft
        waiting = client.get(f"/fiches/{draft.slug}")
        assert waiting.status_code == 200 and "Brouillon de Paimpol" not in \
            waiting.get_data(as_text=True)
        assert "en cours de relecture" in waiting.get_data(as_text=True)
    assert "Brouillon de Paimpol" not in _read(client, "/fiches").get_data(as_text=True)


def test_a_signed_in_page_never_reaches_anonymous_readers_nor_the_reverse(
        client, login, moderator, brest):
    url = f"/fiches/{brest.slug}"
    login(moderator)
    signed = _read(client, url)
    assert "Se déconnecter" in signed.get_data(as_text=True)
    assert "X-Cache" not in signed.headers
    assert "private" in signed.headers["Cache-Control"] and "public" not in \
        signed.headers["Cache-Control"]
    client.delete_cookie("session")
    anonymous = _read(client, url)
    assert anonymous.headers["X-Cache"] == "miss"  # the signed-in answer was not stored
    assert "Se déconnecter" not in anonymous.get_data(as_text=True)
    assert _read(client, url).headers["X-Cache"] == "hit"
    login(moderator)
    again = _read(client, url)
    assert "X-Cache" not in again.headers  # the anonymous answer is not served
    assert "Se déconnecter" in again.get_data(as_text=True)


def test_a_token_is_never_answered_from_the_cache(client, bearer, moderator, brest):
    url = f"/api/v1/sheets/{brest.slug}"
    _read(client, url)
    assert _read(client, url).headers["X-Cache"] == "hit"
    assert "X-Cache" not in _read(client, url, headers=bearer(moderator)).headers


def test_anonymous_answers_carry_validators_and_a_matching_etag_is_a_304(client, brest):
    url = f"/fiches/{brest.slug}"
    first = _read(client, url)
    etag = first.headers["ETag"]
    assert not etag.startswith("W/")  # strong: the hash of the exact bytes
    assert first.headers["Last-Modified"]
    cache_control = first.headers["Cache-Control"]
    assert "public" in cache_control and "max-age=" in cache_control \
        and "stale-while-revalidate=" in cache_control
    assert "Cookie" in first.headers["Vary"]  # a proxy keeps signed-in readers apart
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.head(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"autre"'}).status_code == 200


def test_embeds_keep_their_frame_headers_when_served_from_the_cache(client, brest):
    url = f"/embed/sheets/{brest.slug}"
    first = _read(client, url)
    hit = _read(client, url)
    assert hit.headers["X-Cache"] == "hit"
    assert hit.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]
    assert "frame-ancestors" in hit.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in hit.headers
    assert "Set-Cookie" not in hit.headers


def test_a_cached_answer_is_served_before_flask_with_the_same_headers(app, client, brest):
    """The front door answers a hit without a request context: no hook, no session, no view;
    the answer is the miss's, byte for byte, headers included (a request id of its own)."""
    url = f"/api/v1/sheets/{brest.slug}"
    miss = _read(client, url, headers={"X-Request-Id": "lecteur-0001"})
    hooks: list[str] = []
    app.before_request_funcs[None].insert(0, lambda: hooks.append("before") and None)
    hit = _read(client, url)
    assert hit.headers["X-Cache"] == "hit" and hooks == []
    assert hit.get_data() == miss.get_data()
    for header in ("Content-Type", "ETag", "Access-Control-Allow-Origin",
                   "Content-Security-Policy", "X-Content-Type-Options"):
        assert hit.headers[header] == miss.headers[header], header
    assert miss.headers["X-Request-Id"] == "lecteur-0001"
    assert len(hit.headers["X-Request-Id"]) == 32 and "Set-Cookie" not in hit.headers
    head = client.head(url)
    assert head.status_code == 200 and head.headers["X-Cache"] == "hit" and head.get_data() == b""


def test_a_signed_in_reader_passes_the_front_door_to_flask(app, client, login, contributor,
                                                           brest):
    url = f"/fiches/{brest.slug}"
    _read(client, url)
    login(contributor)
    hooks: list[str] = []
    app.before_request_funcs[None].insert(0, lambda: hooks.append("before") and None)
    response = _read(client, url)
    assert "X-Cache" not in response.headers and hooks == ["before"]
    assert "private" in response.headers["Cache-Control"]


def test_behind_a_proxy_each_scheme_has_its_own_answer(app_config, brest):
    """ProxyFix sits outside the front door: an https page never answers an http request."""
    from kb import create_app

    app = create_app({**app_config, "KB_PROXIES": 1})
    client = app.test_client()
    https = {"X-Forwarded-Proto": "https"}
    url = f"/embed/sheets/{brest.slug}"
    assert client.get(url, headers=https).headers["X-Cache"] == "miss"
    assert client.get(url).headers["X-Cache"] == "miss"
    assert client.get(url, headers=https).headers["X-Cache"] == "hit"


@pytest.mark.parametrize("url", ["/fiches/a%00b", "/recherche?q=a%00b", "/fiches/inconnue",
                                 "/fiches/{slug}/nulle-part"])
def test_odd_reads_pass_the_front_door_to_flask_answers(client, brest, url):
    response = client.get(url.format(slug=brest.slug))
    assert response.status_code in (200, 400, 404), response.status_code
    assert response.headers.get("X-Cache") != "hit"


def test_a_redis_that_is_down_serves_answers_uncached(app_config, brest):
    from kb import create_app

    app = create_app({**app_config, "KB_CACHE": "redis", "KB_REDIS_URL": "redis://127.0.0.1:1/0"})
    client = app.test_client()
    for _ in range(2):
        response = client.get(f"/fiches/{brest.slug}")
        assert response.status_code == 200
        assert "Accueil à Brest" in response.get_data(as_text=True)


@contextmanager
def counted_queries():
    statements: list[str] = []

    def count(conn, cursor, statement, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


@pytest.mark.parametrize("url", ["/", "/fiches", "/recherche?q=accueil", "/tags/accueil",
                                 "/api/v1/sheets", "/api/v1/search?q=accueil",
                                 "/embed/list?tag=accueil"])
def test_the_query_count_of_a_listing_does_not_grow_with_its_length(app, client, make_sheet,
                                                                   url):
    app.config["KB_CACHE"] = "none"
    from kb.cache import make_store

    app.extensions["kb.cache"] = make_store(app)  # every request renders
    counts = []
    for how_many in (2, 12):
        while _published() < how_many:
            make_sheet(title=f"Accueil numéro {_published() + 1}", tags=["accueil"])
        db.session.expire_all()
        _read(client, url)  # warm: per-process memos
        with counted_queries() as statements:
            _read(client, url)
        counts.append(len(statements))
    assert counts[1] <= counts[0], counts  # 12 rows cost no more than 2


def _published() -> int:
    from sqlalchemy import func, select

    from kb.sheets.models import Sheet

    return db.session.scalar(select(func.count()).select_from(Sheet)) or 0


def test_an_anonymous_cached_answer_costs_one_query_and_loads_no_user(app, client, brest,
                                                                     monkeypatch):
    from kb.extensions import login_manager

    loaded: list[Any] = []
    original = login_manager._user_callback
    monkeypatch.setattr(login_manager, "_user_callback",
                        lambda *a: loaded.append(a) or original(*a))
    for url in (f"/fiches/{brest.slug}", "/fiches"):
        _read(client, url)
        with counted_queries() as statements:
            assert _read(client, url).headers["X-Cache"] == "hit"
        assert len(statements) == 1, statements
    assert loaded == []


def test_seats_taken_on_a_visit_are_never_served_from_an_older_cached_page(
        app, client, make_user, make_sheet):
    from kb.visits import operations as visits
    from tests.test_visits import new_slot

    host = make_user("contributor", trusted=True, email="hote@example.org")
    sheet = make_sheet(author=host, title="Ferme pédagogique").sheet
    slot = new_slot(sheet, host, capacity=4, min_participants=1)
    urls = [f"/fiches/{sheet.slug}", "/visites", f"/api/v1/visits/{slot.id}"]
    before = {url: _read(client, url).get_data() for url in urls}
    assert all(_read(client, url).headers["X-Cache"] == "hit" for url in urls)
    visits.register_user(slot.id, make_user("contributor", email="visiteuse@example.org"))
    commit()  # no mark_changed: the slot's row names its sheet (__shown_on_sheet__)
    for url in urls:
        after = _read(client, url)
        assert after.headers["X-Cache"] == "miss", url
        assert after.get_data() != before[url], url


def test_an_availability_change_is_never_served_from_an_older_cached_page(
        client, login, make_user, make_sheet):
    author = make_user("contributor", trusted=True)
    sheet = make_sheet(author=author).sheet
    url = f"/fiches/{sheet.slug}"
    _read(client, url)
    login(author)
    assert client.post(f"/fiches/{sheet.slug}/disponibilite",
                       data={"status": "attente", "delay_days": "15"}).status_code == 302
    client.delete_cookie("session")
    page = _read(client, url)
    assert page.headers["X-Cache"] == "miss"
    assert "délai d'entrée : 15 jours" in unescape(page.get_data(as_text=True))


@pytest.mark.parametrize("url", ["/fiches/{slug}", "/", "/fiches", "/recherche?q=brest",
                                 "/tags/accueil", "/visites", "/territoires"])
def test_anonymous_pages_set_no_cookie_so_that_they_can_be_cached(app, client, brest, url):
    app.config["WTF_CSRF_ENABLED"] = True  # as served: a form's token would write the session
    url = url.format(slug=brest.slug)
    first = _read(client, url)
    assert "Set-Cookie" not in first.headers
    assert first.headers["X-Cache"] == "miss"
    assert _read(client, url).headers["X-Cache"] == "hit"


def test_readers_never_see_an_older_text_whatever_the_moderators_do(app, client, bearer,
                                                                    moderator, brest):
    """Stateful: edits, archives and restores against anonymous reads through the client."""
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

    from kb.sheets.models import Sheet

    headers = bearer(moderator)
    url_kinds = ["/fiches/{slug}", "/api/v1/sheets/{slug}", "/embed/sheets/{slug}",
                 "/fiches", "/recherche?q=brest"]

    class Readers(RuleBasedStateMachine):
        counter = 0

        @rule()
        def publish_an_edit(self) -> None:
            Readers.counter += 1
            sheet = db.session.get(Sheet, brest.id)
            if sheet.state == SheetState.ACTIVE:
                response = client.patch(f"/api/v1/sheets/{sheet.slug}", headers=headers, json={
                    "base_revision": sheet.approved_revision_id,
                    "summary": f"Texte numero {Readers.counter}."})
                assert response.status_code == 200

        @rule(archived=st.booleans())
        def archive_or_restore(self, archived: bool) -> None:
            sheet = db.session.get(Sheet, brest.id)
            to = SheetState.ARCHIVED if archived else SheetState.ACTIVE
            if sheet.state != to:
                set_state(sheet, to, moderator, "relecture")
                commit()

        @rule(kind=st.sampled_from(url_kinds))
        def read(self, kind: str) -> None:
            db.session.expire_all()
            sheet = db.session.get(Sheet, brest.id)
            summary = sheet.approved_revision.data["summary"]
            response = client.get(kind.format(slug=sheet.slug))
            text = response.get_data(as_text=True)
            if "{slug}" in kind:
                # An archived sheet keeps its page; its widget and API object are gone.
                assert response.status_code == 200 or sheet.state == SheetState.ARCHIVED
                assert response.status_code != 200 or summary in text
            elif sheet.state == SheetState.ACTIVE:
                assert summary in text or kind.startswith("/recherche")
            else:
                assert summary not in text, "an archived sheet left in a cached listing"

    run_state_machine_as_test(Readers, settings=settings(
        max_examples=8, stateful_step_count=12, deadline=None,
        suppress_health_check=list(HealthCheck)))


def test_a_full_file_cache_frees_room_for_many_entries_at_once(tmp_path, monkeypatch):
    from kb.cache import BoundedFileCache

    cache = BoundedFileCache(str(tmp_path), threshold=50, default_timeout=300)
    for number in range(51):  # one past the bound: the prune runs at the next entry
        cache.set(f"page-{number}", b"x")
    cache.set("page-51", b"x")
    assert cache._file_count <= 41  # down to 80 % of the bound, plus the new entry
    assert cache.get("page-51") == b"x"
    assert sum(cache.has(f"page-{n}") for n in range(51)) <= 40  # the oldest (by expiry) went

    scans: list[int] = []
    monkeypatch.setattr(cache, "_list_dir", lambda: scans.append(1) or iter(()))
    for number in range(52, 60):  # room was made: no scan of the folder for these
        cache.set(f"page-{number}", b"x")
    assert scans == []


def test_a_search_cached_while_an_index_follows_a_commit_is_not_served_once_it_has(
        app_config, tmp_path, make_user, monkeypatch):
    """Whoosh and PostgreSQL write the index after the data's commit: a search rendered in
    between (the new listing version, the older index) ends when the index is written."""
    from kb import create_app
    from kb.search.service import get_backend
    from kb.sheets import operations

    backend = "postgres" if app_config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql") \
        else "whoosh"
    app = create_app({**app_config, "KB_SEARCH_BACKEND": backend,
                      "KB_INDEX_DIR": str(tmp_path / "whoosh")})
    client = app.test_client()
    with app.app_context():
        author = make_user("moderator", email="indexeur@example.org")
        sheet = operations.create_sheet({**_plain_sheet(), "title": "Potager partagé"},
                                        author).sheet
        commit()
        index = get_backend(app).index
        between: list[str] = []

        def late_index(load: Any, ids: list[int]) -> None:
            between.append(client.get("/recherche?q=verger").headers["X-Cache"])
            index(load, ids)

        monkeypatch.setattr(get_backend(app), "index", late_index)
        operations.edit_sheet(sheet, {"title": "Potager et verger"}, author,
                              base_revision_id=sheet.approved_revision_id)
        commit()
    assert between == ["miss"]  # rendered from the older index: no sheet has "verger" yet
    assert "Potager et verger" in _read(client, "/recherche?q=verger").get_data(as_text=True)


def _plain_sheet() -> dict[str, Any]:
    from tests.conftest import sheet_data

    return sheet_data()


def test_a_search_page_reads_no_revision_text_when_every_result_has_an_extract(app, client,
                                                                               make_sheet):
    """The cards' summaries are replaced by the extracts: the whole texts are not loaded."""
    app.config["KB_CACHE"] = "none"
    from kb.cache import make_store

    app.extensions["kb.cache"] = make_store(app)
    for n in range(3):
        make_sheet(title=f"Accueil numéro {n}")
    _read(client, "/recherche?q=accueil")
    with counted_queries() as statements:
        page = _read(client, "/recherche?q=accueil").get_data(as_text=True)
    assert "Accueil numéro 2" in page and "<mark>" in page
    assert not [s for s in statements if "FROM revisions" in s], statements
