"""The OpenAPI document against the application, in-process (WSGI): schemathesis with its
default checks on every GET operation (server errors, status codes, content types, response
schemas and headers, positive and negative data), positive and negative generation.

Driven through schemathesis' Hypothesis strategies rather than its pytest plugin (whose lazy
fixture loader does not run under pytest 9). KB_FUZZ_EXAMPLES examples per operation and mode
(default 8, seconds in all).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
)
from schemathesis.generation.modes import GenerationMode

from kb.moderation import operations as moderation
from kb.sheets import operations
from kb.transaction import commit

EXAMPLES = int(os.environ.get("KB_FUZZ_EXAMPLES", "8"))


def test_get_operations_conform_to_the_openapi_document(app, make_sheet, contributor) -> None:
    published = make_sheet(title="Fiche publiée", tags=["accueil"], website="")
    make_sheet(title="Fiche avec site", website="https://example.org/")
    operations.edit_sheet(published.sheet, {"summary": "En attente"}, contributor, published.id)
    moderation.report_sheet(published.sheet, "outdated", "Fermé", None, "ip:x")
    commit()
    # Default checks; a 414 (query string over KB_MAX_QUERY, documented on every operation)
    # also counts as rejecting schema-violating data, beside schemathesis' default codes.
    # A filter value that matches nothing (a commune name unknown to the official register) is
    # a documented 400 (kb/sheets/filters.py): no JSON schema can say which names exist.
    config = schemathesis.Config.from_dict({"checks": {
        "negative_data_rejection": {
            "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "414"]},
        "positive_data_acceptance": {
            "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "400"]}}})
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=config)
    schema = schema.include(method="GET")
    failures: list[str] = []
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tested.append(operation.label)
        for mode in GenerationMode:
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call()
                try:
                    case.validate_response(response)
                except (Exception, BaseExceptionGroup) as exc:
                    raise AssertionError(f"{case.method} {case.formatted_path} {case.query} → "
                                         f"{response.status_code} {response.text[:200]}") from exc

            try:
                check()
            except Unsatisfiable:
                continue  # nothing to make invalid (no parameters): no negative case
            except (Exception, BaseExceptionGroup) as exc:  # every operation's failures
                cause = exc.__cause__
                details = getattr(cause, "exceptions", None) or [cause]
                failures.append(f"{operation.label} ({mode.value}) : {str(exc)[:400]}\n"
                                + " | ".join(str(d).strip()[:400] for d in details))
    assert "GET /api/v1/sheets/{slug}" in tested and "GET /donnees/fiches.json" in tested
    assert not failures, "\n\n".join(failures)


def test_an_empty_website_is_null_everywhere_and_documented(client, make_sheet) -> None:
    slug = make_sheet(title="Sans site", website="").sheet.slug
    assert client.get(f"/api/v1/sheets/{slug}").json["website"] is None
    assert client.get("/api/v1/sheets").json["items"][0]["website"] is None
    assert client.get("/donnees/fiches.json").json[0]["website"] is None
    document = client.get("/api/openapi.json").json
    website = document["components"]["schemas"]["Sheet"]["properties"]["website"]
    assert website["type"] == ["string", "null"] and website["format"] == "uri"
    # The CSV keeps an empty cell.
    assert client.get("/donnees/fiches.csv").get_data(as_text=True).splitlines()[1].count(",,") >= 1


def test_api_parameters_outside_the_document_get_a_french_400(client, make_sheet) -> None:
    make_sheet()
    for url, name in (("/api/v1/sheets?per_page=0", "per_page"),
                      ("/api/v1/sheets?page=²", "page"),
                      ("/api/v1/search?sort=hasard", "sort"),
                      ("/api/v1/sheets/similar?limit=true", "limit")):
        response = client.get(url)
        assert response.status_code == 400, url
        assert f"« {name} » invalide" in response.json["message"]
    assert client.get("/api/v1/search?sort=updated&page=2").status_code == 200
    assert client.get("/recherche?sort=hasard&page=x").status_code == 200  # pages stay lenient
