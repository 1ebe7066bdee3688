"""No query string gives a server error: every GET route of the URL map (HTML and API), with
random path values and random query strings (unknown and known parameter names, url_for's
reserved names, repeated keys, huge numbers, Unicode digits, NUL, long values), for an anonymous
visitor, a contributor and a moderator, answers below 500.

Bounded: KB_FUZZ_EXAMPLES examples per route (default 8, a few seconds in all); set it higher
for a deeper run (`KB_FUZZ_EXAMPLES=200 pytest tests/test_abuse_query_strings.py`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule
from werkzeug.routing.converters import AnyConverter, IntegerConverter, PathConverter

from kb.moderation import operations as moderation
from kb.sheets import operations
from kb.transaction import commit

EXAMPLES = int(os.environ.get("KB_FUZZ_EXAMPLES", "8"))
SOURCE = Path(__file__).resolve().parent.parent / "kb"
# Every lowercase name the code reads with .get("…") (query parameters among them), plus the
# names url_for() treats specially: a visitor's parameter must never reach them.
KNOWN_NAMES = sorted({name for path in SOURCE.rglob("*.py")
                      for name in re.findall(r"\.get\(\"([a-z_]{1,30})\"", path.read_text())}
                     | {"maxwidth", "maxheight", "scale", "city", "department", "actor_type"})
RESERVED = ["_method", "_external", "_anchor", "_scheme", "_id", "endpoint", "values"]
TRICKY = ["", "0", "-1", "1", "²", "١٢", "٣", "9" * 5000, "1e309", "nan", "inf", "0x10", " 3 ",
          "\x00", "%", "%00", "../", "POST", "GET", "true", "[]", "{}", "é" * 50,
          "http://kb.test/fiches/x", "https://evil.example/", "//evil.example",
          "javascript:alert(1)", "\ud7ff", "a" * 3000]

values = st.one_of(st.sampled_from(TRICKY), st.text(max_size=40),
                   st.integers(-2**70, 2**70).map(str))
keys = st.one_of(st.sampled_from(KNOWN_NAMES), st.sampled_from(RESERVED), st.text(max_size=12))
queries = st.lists(st.tuples(keys, values), max_size=6)


def _get_rules(app: Any) -> list[Rule]:
    return sorted((r for r in app.url_map.iter_rules()
                   if "GET" in (r.methods or ()) and r.endpoint != "static"),
                  key=lambda r: r.rule)


def _path_values(rule: Rule, known: dict[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    strategies: dict[str, st.SearchStrategy[Any]] = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            strategies[name] = st.sampled_from(sorted(converter.items))
        elif isinstance(converter, IntegerConverter):
            strategies[name] = st.one_of(st.sampled_from(known["int"]),
                                         st.integers(0, 10**25))
        elif isinstance(converter, PathConverter):
            strategies[name] = st.text(min_size=1, max_size=30)
        else:
            strategies[name] = st.one_of(st.sampled_from(known["str"]),
                                         st.text(min_size=1, max_size=40))
    return st.fixed_dictionaries(strategies)


def test_no_get_route_answers_500_whatever_the_query_string(app, client, login, make_sheet,
                                                           contributor, moderator) -> None:
    published = make_sheet(title="Fiche publiée", tags=["accueil"])
    pending = operations.edit_sheet(published.sheet, {"summary": "En attente"}, contributor,
                                    published.id)
    report = moderation.report_sheet(published.sheet, "outdated", "Fermé", None, "ip:x")
    commit()
    known = {"int": [published.id, pending.id, report.id, 1],
             "str": [published.sheet.slug, "accueil", "commune", "x"]}
    people = {"anonyme": None, "contributeur": contributor, "modérateur": moderator}
    adapter = app.url_map.bind("kb.test")
    failures: list[str] = []

    def checker(rule: Rule) -> Any:
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(path=_path_values(rule, known), query=queries,
               who=st.sampled_from(sorted(people)))
        def check(path: dict[str, Any], query: list[tuple[str, str]], who: str) -> None:
            login(people[who])
            url = adapter.build(rule.endpoint, path)
            if query:
                url += "?" + urlencode(query)
            response = client.get(url)
            if rule.endpoint == "embed.oembed" and response.status_code == 501:
                return  # the oEmbed spec's answer to a format other than json
            if rule.endpoint == "ops.health" and response.status_code == 503:
                # /sante's contract: 503 names what fails (here the test database has no
                # Alembic stamp); it must still be JSON, whatever the query string.
                assert response.get_json()["status"] != "ok", url
                return
            assert response.status_code < 500, f"{who} GET {url[:300]} → {response.status_code}"

        return check

    for rule in _get_rules(app):
        try:
            checker(rule)()
        except AssertionError as exc:  # every route's failure, not only the first
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)


def test_the_cases_of_the_issue_answer_4xx_in_french(client, make_sheet, moderator,
                                                     login) -> None:
    revision = make_sheet(title="Fiche embarquée")
    page_url = f"http://kb.test/fiches/{revision.sheet.slug}"
    for value in ("²", "١٢", "9" * 5000, "-3", "0"):
        response = client.get("/oembed", query_string={"url": page_url, "maxwidth": value})
        assert response.status_code == 400, value
        assert "nombre entier positif" in response.json["message"]
    assert client.get("/oembed", query_string={"url": page_url, "maxwidth": "300"}).json[
        "width"] == 300

    for name in ("_method", "_external", "_anchor", "_scheme"):
        response = client.get(f"/recherche?q=accueil&{name}=POST")
        assert response.status_code == 200, name


def test_pagination_links_keep_parameters_as_data(client, make_sheet) -> None:
    for n in range(21):
        make_sheet(title=f"Fiche {n}")
    # Listings keep their own parameters only; none is ever read as a url_for option.
    for url in ("/fiches?_method=POST&_anchor=x&scale=commune",
                "/recherche?_method=POST&_anchor=x&q=fiche"):
        response = client.get(url)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "page=2" in html and "#x" not in html


def test_ids_beyond_the_columns_are_404_or_ignored(client, make_sheet, moderator, login) -> None:
    revision = make_sheet()
    slug = revision.sheet.slug
    huge = "9" * 30
    assert client.get(f"/fiches/{slug}?revision={huge}").status_code == 200  # ignored
    assert client.get(f"/fiches/{slug}/diff?to={huge}").status_code == 404  # not that diff
    assert client.get(f"/fiches/{slug}/diff?from={huge}&to={revision.id}").status_code == 404
    login(moderator)
    assert client.get(f"/moderation/revisions/{huge}").status_code == 404
    assert client.get("/moderation/revisions/١٢").status_code == 404
    response = client.post("/moderation/revisions/lot",
                           data={"action": "approuver", "revision": ["²", huge]})
    assert response.status_code == 302  # "cochez au moins une révision"
