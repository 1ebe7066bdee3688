"""Issue 28: the operators' checks. `/sante` for load balancers (200, or 503 naming what
fails), `kb doctor` (French lines, exit 1 on a problem), the moderators' dashboard showing
the same checks, the runs of the cron commands, request ids and the Sentry scrubber."""

from __future__ import annotations

import json
import logging
import socket
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from kb import create_app
from kb.extensions import db
from kb.mail.models import OutboxMail
from kb.ops.models import CommandRun
from kb.ops.reporting import before_send, scrub
from kb.sheets.models import Sheet
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.conftest import PG_URL


def stamp_head() -> None:
    """The fixtures create the tables from the models: say they are at the last migration,
    and build the search index as `kb init-db` does."""
    from alembic import command

    from kb.schema import alembic_config
    from kb.search.service import update_index

    command.stamp(alembic_config(), "head")  # type: ignore[arg-type]
    update_index()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def make_index_stale(sheet_id: int) -> None:
    # Behind the application's back (no ORM object flushed, no sheet marked): the index
    # keeps the sheet's old stamp.
    db.session.execute(update(Sheet).where(Sheet.id == sheet_id).values(
        last_reviewed_at=utcnow() - timedelta(days=40)))
    db.session.commit()


@pytest.mark.skipif(bool(PG_URL), reason="moves the SQLite file's folder away")
def test_sante_is_503_when_the_database_is_gone_and_200_when_it_is_back(app_config, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/kb.sqlite3"})
    client = app.test_client()
    with app.app_context():
        db.create_all()
        stamp_head()
        db.session.remove()

    ok = client.get("/sante")
    assert ok.status_code == 200, ok.json
    assert ok.json["status"] == "ok" and ok.json["failing"] == []
    assert set(ok.json["checks"]) == {"database", "schema", "index", "mail_queue"}
    assert ok.headers["Cache-Control"] == "no-store"

    folder.rename(tmp_path / "away")
    with app.app_context():
        db.engine.dispose()  # no pooled connection keeps the file open
    gone = client.get("/sante")
    assert gone.status_code == 503
    assert gone.json["failing"] == ["database"]
    assert gone.json["checks"]["database"]["detail"] == "base de données injoignable"

    (tmp_path / "away").rename(folder)
    back = client.get("/sante")
    assert back.status_code == 200 and back.json["status"] == "ok"
    with app.app_context():
        db.engine.dispose()


def test_sante_names_a_stale_index_an_old_pending_mail_and_a_schema_behind(app, client,
                                                                          make_sheet):
    stamp_head()
    sheet_id = make_sheet().sheet_id
    assert client.get("/sante").status_code == 200

    make_index_stale(sheet_id)
    db.session.add(OutboxMail(recipient="ana@example.org", kind="confirm", subject="Lien",
                              body_text="secret", message_id="<x@kb>", state="pending",
                              created_at=utcnow() - timedelta(hours=3),
                              send_after=utcnow() - timedelta(hours=3), attempts=0))
    commit()
    answer = client.get("/sante")
    assert answer.status_code == 503
    assert answer.json["failing"] == ["index", "mail_queue"]
    assert "3 h" in answer.json["checks"]["mail_queue"]["detail"]
    assert "ana@example.org" not in answer.get_data(as_text=True)

    db.session.execute(db.text("UPDATE alembic_version SET version_num = '0024'"))
    db.session.commit()
    assert "schema" in client.get("/sante").json["failing"]


def test_sante_is_never_rate_limited(app_config, tmp_path):
    app = create_app({**app_config, "RATELIMIT_ENABLED": True})
    with app.app_context():
        db.create_all()
        stamp_head()
        client = app.test_client()
        codes = {client.get("/sante").status_code for _ in range(150)}
        db.session.remove()
        db.engine.dispose()
    assert codes == {200}


def test_doctor_reports_a_stopped_mail_transport_and_a_stale_index(app, make_sheet):
    stamp_head()
    app.config["KB_MAIL_URL"] = f"smtp://127.0.0.1:{closed_port()}"
    make_index_stale(make_sheet().sheet_id)

    result = app.test_cli_runner().invoke(args=["doctor"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("ÉCHEC Serveur de courriel : 127.0.0.1:") and "injoignable" in line
               for line in lines), result.output
    assert any(line.startswith("ÉCHEC Index de recherche : 1 fiche(s) en écart")
               for line in lines), result.output
    assert "ok   Schéma de la base : schéma à jour" in result.output
    assert "ÉCHEC Tâche `kb mail send` (chaque minute) : jamais lancée" in result.output


def test_doctor_is_content_once_everything_runs(app, smtp):
    stamp_head()
    app.config["SECRET_KEY"] = "x" * 16
    runner = app.test_cli_runner()
    for args in (["mail", "send"], ["mail", "letters"], ["visits", "decide"],
                 ["questions", "remind"], ["duplicates", "scan"], ["index", "optimize"]):
        assert runner.invoke(args=args).exit_code == 0, args
    result = runner.invoke(args=["doctor"])
    assert "jamais lancée" in result.output  # kb backup: never run yet
    db.session.add(CommandRun(name="backup", started_at=utcnow(), finished_at=utcnow(),
                              ok=True, error=""))
    commit()
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "Tout est en ordre."


def test_a_failed_or_late_cron_command_is_reported(app):
    stamp_head()
    app.config["KB_MAIL_URL"] = ""

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("panne")

    from kb.ops.runs import recorded

    with pytest.raises(RuntimeError):
        recorded("mail letters", boom)()
    run = db.session.get(CommandRun, "mail letters")
    assert run is not None and not run.ok and "panne" in run.error
    db.session.add(CommandRun(name="duplicates scan", started_at=utcnow() - timedelta(days=5),
                              finished_at=utcnow() - timedelta(days=5), ok=True, error=""))
    commit()
    output = app.test_cli_runner().invoke(args=["doctor"]).output
    assert "ÉCHEC Tâche `kb mail letters` (chaque heure) : a échoué il y a" in output
    assert "ÉCHEC Tâche `kb duplicates scan` (chaque nuit) : dernière exécution il y a 5 jours" \
        in output


def test_the_dashboard_shows_the_same_checks(app, client, login, moderator):
    stamp_head()
    app.config["KB_MAIL_URL"] = f"smtp://127.0.0.1:{closed_port()}"
    login(moderator)
    page = client.get("/moderation/tableau-de-bord").get_data(as_text=True)
    assert "État du service" in page
    assert "<strong>Échec</strong> — Serveur de courriel : 127.0.0.1:" in page
    assert "Correct — Index de recherche : index conforme à la base" in page
    assert "<strong>Échec</strong> — Tâche <code>kb mail send</code> (chaque minute)" in page


def test_every_response_carries_a_request_id_and_accepts_a_sane_one(client):
    first, second = client.get("/sante"), client.get("/fiches")
    assert len(first.headers["X-Request-Id"]) == 32
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    given = client.get("/sante", headers={"X-Request-Id": "lb-7f3a9c21"})
    assert given.headers["X-Request-Id"] == "lb-7f3a9c21"
    insane = client.get("/sante", headers={"X-Request-Id": "<script>alert(1)</script>"})
    assert len(insane.headers["X-Request-Id"]) == 32


def test_an_error_writes_one_json_line_with_the_request_id(app: Flask, caplog):
    @app.get("/panne-test")
    def broken() -> str:
        raise ValueError("contact ana@example.org")

    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="kb.errors"):
        answer = client.get("/panne-test", headers={"X-Request-Id": "req-12345678"})
    assert answer.status_code == 500
    assert answer.headers["X-Request-Id"] == "req-12345678"
    lines = [r.getMessage() for r in caplog.records if r.name == "kb.errors"]
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["request_id"] == "req-12345678" and line["error"] == "ValueError"
    assert line["path"] == "/panne-test"
    assert "ana@example.org" not in lines[0]


def test_the_sentry_scrubber_removes_addresses_drafts_and_tokens():
    event = {
        "user": {"email": "ana@example.org", "ip_address": "10.0.0.1"},
        "request": {"url": "http://kb.test/fiches/nouvelle", "method": "POST",
                    "data": {"title": "Mon brouillon", "context": "texte privé"},
                    "cookies": {"session": "abc"}, "query_string": "email=ana@example.org",
                    "headers": {"Authorization": "Bearer s3cr3t", "Cookie": "session=abc",
                                "User-Agent": "Mozilla", "X-Csrf-Token": "tok"}},
        "exception": {"values": [{"type": "ValueError",
                                  "value": "bob@example.org n'a pas pu être joint",
                                  "stacktrace": {"frames": [{"function": "save",
                                                             "vars": {"draft": "texte"}}]}}]},
        "extra": {"api_token": "kb_123", "count": 3},
        "breadcrumbs": {"values": [{"message": "envoi à carla@example.org",
                                    "data": {"recipient": "carla@example.org"}}]},
    }
    clean = before_send(event, {})
    text = json.dumps(clean)
    for secret in ("example.org", "brouillon", "texte privé", "s3cr3t", "session=abc", "kb_123",
                   "10.0.0.1", "tok\""):
        assert secret not in text, secret
    assert clean["request"]["headers"]["User-Agent"] == "Mozilla"
    assert clean["exception"]["values"][0]["value"] == "[adresse] n'a pas pu être joint"
    assert clean["extra"]["count"] == 3
    assert scrub({"page": "/fiches/accueil"}) == {"page": "/fiches/accueil"}


def test_sentry_is_set_up_only_with_a_dsn(app_config, monkeypatch):
    calls: list[dict[str, Any]] = []
    import sentry_sdk

    monkeypatch.setattr(sentry_sdk, "init", lambda **kw: calls.append(kw))
    create_app(app_config)
    assert calls == []
    create_app({**app_config, "KB_SENTRY_DSN": "https://key@sentry.example/1"})
    assert len(calls) == 1
    assert calls[0]["send_default_pii"] is False
    assert calls[0]["before_send"] is before_send
