"""Every message a person reads is French: form errors, flashes, refusals, the `kb` command.

English is found with a list of words that French messages never use ("This field is
required.", "Invalid email address.", "Field cannot be longer than 200 characters.",
"Error: ...", "The CSRF token is missing.").
"""

from __future__ import annotations

import ast
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import EmailField, RadioField, SelectField

from kb import create_app
from kb.extensions import db
from tests.conftest import PASSWORD, sheet_data

ENGLISH = re.compile(
    r"\b(this|field|fields|is|are|required|invalid|must|be|cannot|longer|shorter|than|least|"
    r"characters?|not|valid|choice|token|missing|please|error|address|equal|enter|value|"
    r"the|and|should|Try|Aborted|expired|match|session|referrer|Usage:|Did you mean)\b",
    re.IGNORECASE)
KB = Path(__file__).resolve().parent.parent / "kb"


def english(text: str) -> list[str]:
    return ENGLISH.findall(text)


def _all_forms() -> list[type[FlaskForm]]:
    found: list[type[FlaskForm]] = []
    todo = list(FlaskForm.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("kb."):
            found.append(cls)
    return found


def _bad_values(form: FlaskForm) -> MultiDict[str, str]:
    """A wrong value for every field: too long, not an address, not a choice."""
    values: MultiDict[str, str] = MultiDict()
    for field in form:
        if isinstance(field, EmailField):
            values.add(field.name, "pas-une-adresse")
        elif isinstance(field, SelectField | RadioField):
            values.add(field.name, "valeur-inconnue")
        else:
            values.add(field.name, "x" * 100_001)
    return values


def test_wtforms_messages_of_every_form_are_french(app):
    forms = _all_forms()
    assert {"LoginForm", "RegisterForm", "SheetForm", "ReportForm"} <= {f.__name__ for f in forms}
    messages: dict[str, list[str]] = {}
    for cls in forms:
        for data in (MultiDict(), None):
            with app.test_request_context("/", method="POST"):
                form = cls(formdata=MultiDict())
                if data is None:
                    form = cls(formdata=_bad_values(form))
                form.validate()
                for name, errors in form.errors.items():
                    messages.setdefault(f"{cls.__name__}.{name}", []).extend(map(str, errors))
    every = [m for found in messages.values() for m in found]
    # WTForms' own messages come in French (forms that set their own wording keep it).
    assert "Ce champ est requis." in every
    assert messages["LoginForm.email"] and messages["RegisterForm.email"]
    assert any("100001 caractères, pour 200 au plus" in m for m in messages["SheetForm.title"])
    bad = {where: [m for m in found if english(m)] for where, found in messages.items()}
    assert not {where: found for where, found in bad.items() if found}


def _shown_messages(page: str) -> list[str]:
    """The text of the error messages, error summaries and flashes of a page."""
    parts = re.findall(r'<(p|div) class="(?:error|error-summary|flash[^"]*)"[^>]*>(.*?)</\1>', page, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split()) for _, html in parts]


def _assert_french(page: str, at_least: int = 1) -> list[str]:
    messages = _shown_messages(page)
    assert len(messages) >= at_least, page
    assert not [m for m in messages if english(m)], messages
    return messages


@pytest.mark.parametrize("data", [
    {},
    {"display_name": "x" * 121, "email": "pas-une-adresse", "password": "court", "confirm": "autre"},
    {"display_name": "Claire", "email": "claire@example.org", "password": PASSWORD, "confirm": "autre"},
])
def test_registration_errors_are_french(client, data):
    response = client.post("/inscription", data=data)
    assert response.status_code in (200, 422)
    _assert_french(response.get_data(as_text=True))


@pytest.mark.parametrize("data", [{}, {"email": "pas-une-adresse", "password": "x"},
                                  {"email": "personne@example.org", "password": "x"}])
def test_login_errors_are_french(client, data):
    _assert_french(client.post("/connexion", data=data).get_data(as_text=True))


@pytest.mark.parametrize("changes", [
    {"title": ""},
    {"title": "x" * 201, "summary": "y" * 501, "city": "z" * 121},
    {"website": "pas une adresse", "actor_type": "inconnu", "scale": "galaxie"},
    {"tags": ["x" * 61]},
    {"context": "[a](https://a.example) [b](https://b.example) [c](https://c.example) "
                "[d](https://d.example)"},  # too many links for a new contributor
])
def test_sheet_form_errors_are_french(client, login, contributor, changes):
    login(contributor)
    data = {k: "\n".join(v) if isinstance(v, list) else v for k, v in sheet_data(**changes).items()}
    response = client.post("/fiches/nouvelle", data={**data, "comment": "c" * 301})
    assert response.status_code == 422
    _assert_french(response.get_data(as_text=True), at_least=2)


def test_report_errors_are_french(client, make_sheet):
    slug = make_sheet().sheet.slug
    for data in ({}, {"reason": "inconnu"}, {"reason": "other", "comment": ""}):
        _assert_french(client.post(f"/fiches/{slug}/signaler", data=data).get_data(as_text=True))


def test_flashes_after_actions_are_french(client, login, contributor, moderator, make_sheet):
    login(contributor)
    data = {k: "\n".join(v) if isinstance(v, list) else v for k, v in sheet_data().items()}
    page = client.post("/fiches/nouvelle", data=data, follow_redirects=True).get_data(as_text=True)
    _assert_french(page)
    login(moderator)
    revision = make_sheet(author=contributor, title="Une autre fiche")
    page = client.post(f"/revisions/{revision.id}/refuser", data={"reason": ""},
                       follow_redirects=True).get_data(as_text=True)
    assert "motif" in " ".join(_assert_french(page))


def test_a_refused_csrf_token_is_explained_in_french(app_config, pg_database):
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    with app.app_context():
        if pg_database is None:
            db.create_all()
    response = app.test_client().post("/connexion", data={"email": "a@b.fr", "password": "x"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Formulaire refusé : le formulaire n&#39;a pas de jeton de sécurité." in page
    assert not english(unescape(re.sub(r"<[^>]+>", " ", page.split("<main")[1].split("</main>")[0])))


def _strings(node: ast.AST) -> list[str]:
    """The literal text of a str constant or f-string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    if isinstance(node, ast.BinOp):
        return _strings(node.left) + _strings(node.right)
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def _messages_in_source() -> list[tuple[str, str]]:
    """Every flash(), abort() description and raised exception message written in kb/."""
    found = []
    for path in KB.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            args: list[Any] = []
            if name == "flash" and node.args:
                args = node.args[:1]
            elif name == "abort" and len(node.args) > 1:
                args = node.args[1:2]
            elif name.endswith(("Error", "Exception", "Denied", "Refused", "Failed", "Busy",
                                "Unavailable")) and node.args:
                args = node.args[:1]
            for arg in args:
                for text in _strings(arg):
                    found.append((f"{path.relative_to(KB.parent)}:{node.lineno}", text))
    return found


def test_flashes_and_refusals_in_the_code_are_french():
    messages = _messages_in_source()
    assert len(messages) > 50
    assert not [(where, text) for where, text in messages if english(text)]


def test_the_english_detector_knows_what_it_looks_for():
    for text in ("This field is required.", "Invalid email address.", "Error: le mot de passe",
                 "Field cannot be longer than 200 characters.", "The CSRF token is missing."):
        assert english(text), text
    for text in ("Ce champ est requis.", "Adresse électronique non valide.", "Erreur : valeur invalide",
                 "Le champ ne peut pas contenir plus de 200 caractères.", "Jeton CSRF manquant."):
        assert not english(text), text


@pytest.fixture
def kb_command(tmp_path, monkeypatch):
    """The `kb` console script, on a database of its own."""
    from kb.console import main

    monkeypatch.setenv("KB_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("KB_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("KB_SECRET_KEY", "cli")
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(main, list(args), input=input, prog_name="kb")

    assert run("init-db").exit_code == 0
    return run


@pytest.mark.parametrize(("args", "said"), [
    (("users", "create", "a@example.org", "--password", "court"),
     "Erreur : le mot de passe doit faire au moins 10 caractères"),
    (("users", "create"), "Erreur : argument manquant : EMAIL."),
    (("users", "create", "a@example.org", "--role", "chef", "--password", PASSWORD),
     "Erreur : valeur invalide pour '--role' : « chef » n'est pas une valeur possible"),
    (("users", "bogus"), "Erreur : commande inconnue : « bogus »."),
    (("--bogus",), "Erreur : option inconnue : --bogus."),
    (("tokens", "create", "personne@example.org"), "Erreur : aucun compte pour personne@example.org"),
    (("import", "/nulle/part.csv", "--format", "csv"),
     "Erreur : valeur invalide pour 'PATH' : le fichier « /nulle/part.csv » n'existe pas."),
])
def test_kb_command_errors_are_french(kb_command, args, said):
    result = kb_command(*args)
    assert result.exit_code in (1, 2)
    assert said in result.output
    assert "Error" not in result.output and "Usage:" not in result.output and "Try " not in result.output


def test_kb_users_create_asks_the_password_twice_in_french(kb_command):
    result = kb_command("users", "create", "a@example.org",
                        input=f"{PASSWORD}\nautre-chose-1\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Mot de passe : " in result.output
    assert "Erreur : les deux saisies diffèrent ; recommencez." in result.output
    assert "Compte créé : a@example.org" in result.output
    interrupted = kb_command("users", "create", "b@example.org", input="")
    assert interrupted.exit_code == 1
    assert "Interrompu." in interrupted.output and "Aborted" not in interrupted.output
