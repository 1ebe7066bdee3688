"""One error vocabulary: every domain refuses with the errors of kb/errors.py, and the app maps
them to HTTP in one place (a French page, or JSON under /api/ with the same codes everywhere)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable

from flask.testing import FlaskClient

import kb
from kb.auth.models import User
from kb.errors import KbError

# Exceptions of kb/ that are not refusals of a request, and why.
NOT_REFUSALS = {
    "kb.search.backend.SearchUnavailable": "the index is missing or busy: pages fall back",
    "kb.search.backend.IndexBusy": "a writer holds the index: the caller retries",
    "kb.mail.message.MailError": "the mail transport failed: the outbox retries",
    "kb.mail.sender.TemporaryFailure": "an SMTP answer 4xx: the outbox retries",
    "kb.mail.sender.PermanentFailure": "an SMTP answer 5xx: the row is marked failed",
    "kb.mail.sender.ConnectionFailure": "no SMTP server: the outbox retries",
    "kb.cli_french.Interrupted": "Ctrl-C in a command, said in French",
    "kb.importers.common.ImportFailed": "a file refused by `kb import` (a CLI error naming the line)",
    "kb.ops.snapshot.SnapshotError": "`kb backup` or `kb restore` cannot be done (a CLI error)",
    "kb.api.http.BodyError": "the API's body parser, answered as a 400 'validation' by kb.api",
}


def _exceptions_defined_in_kb() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(kb.__path__, "kb."):
        if ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_exception_of_a_domain_is_one_of_the_vocabulary() -> None:
    exceptions = _exceptions_defined_in_kb()
    assert "kb.errors.NotFound" in exceptions
    outside = {name for name, cls in exceptions.items()
               if not issubclass(cls, KbError) and name not in NOT_REFUSALS}
    assert outside == set()


def test_the_exceptions_excused_still_exist() -> None:
    assert set(NOT_REFUSALS) <= set(_exceptions_defined_in_kb())


def test_a_refused_follow_answers_with_the_shared_json_codes(
        client: FlaskClient, make_user: Callable[..., User],
        bearer: Callable[[User], dict[str, str]]) -> None:
    headers = bearer(make_user("contributor"))
    invalid = client.post("/api/v1/follows", headers=headers, json={"territory": "zz"})
    assert invalid.status_code == 422 and invalid.get_json()["error"] == "validation"
    assert "Territoire inconnu" in invalid.get_json()["message"]
    missing = client.delete("/api/v1/follows/999999", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


def test_a_question_about_a_missing_sheet_is_a_json_404(
        client: FlaskClient, make_user: Callable[..., User],
        bearer: Callable[[User], dict[str, str]]) -> None:
    answer = client.post("/api/v1/sheets/fiche-inexistante/questions",
                         headers=bearer(make_user("contributor")), json={"question": "x" * 40})
    assert answer.status_code == 404 and answer.get_json()["error"] == "not_found"
