"""The `kb` command and the migrations."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from kb.auth.models import ApiToken
from kb.auth.operations import find_user, user_for_token
from kb.extensions import db
from kb.search.models import owned_by_engine

SEED = Path(__file__).parent / "data" / "bazar_seed.txt"


def test_users_create_and_tokens_create(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "ana@example.org", "--role", "moderator",
                                 "--password", "un-mot-de-passe"])
    assert result.exit_code == 0, result.output
    user = find_user("ana@example.org")
    assert user.role == "moderator" and user.check_password("un-mot-de-passe")

    again = runner.invoke(args=["users", "create", "ana@example.org", "--password", "xxxxxxxx"])
    assert again.exit_code != 0 and "existe déjà" in again.output
    bad_role = runner.invoke(args=["users", "create", "b@example.org", "--role", "chef",
                                   "--password", "xxxxxxxx"])
    assert bad_role.exit_code != 0

    token = runner.invoke(args=["tokens", "create", "ana@example.org"]).output.strip()
    assert user_for_token(token).email == "ana@example.org"
    assert db.session.query(ApiToken).one().token_hash != token  # only the hash is stored
    missing = runner.invoke(args=["tokens", "create", "nobody@example.org"])
    assert missing.exit_code != 0 and "aucun compte" in missing.output


def test_import_command_prints_a_summary_and_rejects_bad_files(app, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import", str(SEED), "--format", "bazar-text"])
    assert result.exit_code == 0, result.output
    assert "10 fiche(s) lue(s) : 10 créée(s)" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  oops")
    failed = runner.invoke(args=["import", str(bad), "--format", "json"])
    assert failed.exit_code != 0 and "ligne 2" in failed.output


def test_export_command_writes_files(app, make_sheet, tmp_path):
    make_sheet()
    runner = app.test_cli_runner()
    for fmt in ("json", "jsonl", "csv"):
        out = tmp_path / f"export.{fmt}"
        result = runner.invoke(args=["export", str(out), "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "Accueil inconditionnel" in out.read_text()


def test_migrations_build_the_schema_the_models_declare(app_config, tmp_path):
    """`kb init-db` (Alembic) and the models must agree: a model change needs a migration."""
    from kb import create_app

    url = f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": url})
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    engine = create_engine(url)
    with engine.connect() as conn:
        # The SQLite search engine's own tables (FTS5) are not the models' business.
        context = MigrationContext.configure(
            conn, opts={"include_name": lambda name, type_, _: not owned_by_engine(name, type_)})
        diff = compare_metadata(context, db.metadata)
        assert "sheets" in inspect(conn).get_table_names()
    engine.dispose()
    assert diff == []
