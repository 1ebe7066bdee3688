"""Issue 20, item 4: `make run PORT=5077` links to port 5077. Without KB_BASE_URL, absolute
links follow the address served: a request's own host, else what `kb serve`/`kb run` served."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import flask.cli
import pytest
from click.testing import CliRunner

import kb.config
from kb.console import main
from kb.urls import port_mismatch
from tests.smtp_server import Inbox

SERVED = {"base_url": "http://127.0.0.1:5077"}  # the test client's request host


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    return {**app_config, "KB_BASE_URL": "", "KB_SERVED_URL": "",
            "KB_SERVED_URL_FILE": str(tmp_path / "served_url")}


def test_pages_api_embeds_and_oembed_link_to_the_port_served(client: Any,
                                                              make_sheet: Any) -> None:
    slug = make_sheet().sheet.slug
    here = "http://127.0.0.1:5077"
    api = client.get(f"/api/v1/sheets/{slug}", **SERVED).get_json()
    assert api["url"] == f"{here}/fiches/{slug}"
    page = client.get(f"/fiches/{slug}", **SERVED).get_data(as_text=True)
    jsonld = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>',
                                  page, re.S)[1])
    assert jsonld["url"] == f"{here}/fiches/{slug}"
    assert f'href="{here}/oembed?url=http' in page
    oembed = client.get("/oembed", query_string={"url": f"{here}/fiches/{slug}"},
                        **SERVED).get_json()
    assert f'src="{here}/embed/sheets/{slug}"' in oembed["html"]
    assert oembed["provider_url"] == f"{here}/"
    assert ":5000" not in page + json.dumps(api) + json.dumps(oembed)


def test_mails_link_to_the_port_served(client: Any, smtp: Inbox) -> None:
    client.post("/inscription", data={"display_name": "Nina", "email": "nina@example.org",
                                      "password": "trois chats sur un toit",
                                      "confirm": "trois chats sur un toit"}, **SERVED)
    [message] = smtp.to("nina@example.org")
    links = re.findall(r"https?://[^\s/]+", Inbox.body(message))
    assert links and set(links) == {"http://127.0.0.1:5077"}


def test_a_set_base_url_wins_over_the_request_host(app: Any, client: Any,
                                                   make_sheet: Any) -> None:
    app.config["KB_BASE_URL"] = "https://fiches.example.org"
    slug = make_sheet().sheet.slug
    api = client.get(f"/api/v1/sheets/{slug}", **SERVED).get_json()
    assert api["url"] == f"https://fiches.example.org/fiches/{slug}"


def test_an_export_outside_a_request_links_to_the_address_served(app: Any,
                                                                 make_sheet: Any) -> None:
    slug = make_sheet().sheet.slug

    def export_urls() -> list[str]:
        from kb.importers.exports import export

        out = io.StringIO()
        export(out, "csv")
        return [row["url"] for row in csv.DictReader(io.StringIO(out.getvalue()))]

    assert export_urls() == [f"http://127.0.0.1:5000/fiches/{slug}"]  # nothing served yet
    app.config["KB_SERVED_URL"] = "http://127.0.0.1:5077"  # what `kb serve --port 5077` sets
    assert export_urls() == [f"http://127.0.0.1:5077/fiches/{slug}"]


class _Server:
    """What make_server returns, serving nothing."""

    server_port = 5077

    def serve_forever(self) -> None:
        return None

    def server_close(self) -> None:
        return None


def test_kb_serve_records_the_address_and_warns_about_another_port(
        app_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import kb.serve
    from kb import create_app

    # A database of its own: `kb serve` migrates it (the fixtures' schema is not Alembic's).
    app = create_app({**app_config,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'served.sqlite3'}"})
    monkeypatch.setattr(kb.serve, "make_server", lambda *a, **k: _Server())
    monkeypatch.setattr(kb.serve, "_cannot_listen", lambda host, port: "")
    runner = app.test_cli_runner()
    quiet = runner.invoke(args=["serve", "--port", "5077", "--no-demo"])
    assert quiet.exit_code == 0, quiet.output
    assert "Prêt : http://127.0.0.1:5077" in quiet.output and "Attention" not in quiet.output
    assert (tmp_path / "served_url").read_text().strip() == "http://127.0.0.1:5077"
    assert app.config["KB_SERVED_URL"] == "http://127.0.0.1:5077"

    app.config["KB_BASE_URL"] = "http://127.0.0.1:5000"
    warned = runner.invoke(args=["serve", "--port", "5077", "--no-demo"])
    assert ("Attention : KB_BASE_URL vaut http://127.0.0.1:5000 (port 5000) mais le site est "
            "servi sur le port 5077") in warned.stderr


def test_kb_run_warns_about_another_port(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setattr(flask.cli, "run_simple", lambda *a, **k: None)
    monkeypatch.setattr(kb.config, "SERVED_URL_FILE", tmp_path / "served_url")
    monkeypatch.setenv("KB_SERVED_URL", "")  # `kb run` sets it for the app: restored after
    env = {"KB_BASE_URL": "http://127.0.0.1:5000", "KB_SECRET_KEY": "run",
           "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}"}
    result = CliRunner().invoke(main, ["run", "--port", "5077"], env=env)
    assert result.exit_code == 0, result.output
    assert "Attention : KB_BASE_URL vaut http://127.0.0.1:5000 (port 5000)" in result.stderr
    assert (tmp_path / "served_url").read_text().strip() == "http://127.0.0.1:5077"
    same = CliRunner().invoke(main, ["run", "--port", "5000"], env=env)
    assert "Attention" not in same.stderr


def test_a_public_name_behind_a_proxy_is_not_a_port_mismatch() -> None:
    assert port_mismatch("https://fiches.example.org", "127.0.0.1", 5000) == ""
    assert port_mismatch("", "127.0.0.1", 5077) == ""
    assert port_mismatch("http://localhost:5000", "127.0.0.1", 5077).startswith("Attention")
