"""The one list of health checks: `/sante` (the cheap ones), `kb doctor` and the moderators'
dashboard (all of them) read `run_checks()`. Each check says in French what it found; the
text names counts, ages and settings, never a person, an address or a text."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import text

from kb.extensions import db
from kb.timeutil import utcnow

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
MAIL_LATE_SECONDS = 3600  # the outbox is sent every minute: an hour means it has stopped


@dataclass(frozen=True)
class Check:
    name: str     # stable key: "database", "schema", "index", "mail_queue", ...
    label: str    # French, for people
    ok: bool
    detail: str   # French, no personal data

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} jours"


@functools.lru_cache(maxsize=1)
def schema_heads() -> tuple[str, ...]:
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))


def database() -> Check:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        db.session.rollback()
        log.warning("health: database unreachable: %s", type(exc).__name__)
        return Check("database", "Base de données", False, "base de données injoignable")
    return Check("database", "Base de données", True, "base de données joignable")


def schema() -> Check:
    from alembic.runtime.migration import MigrationContext

    label = "Schéma de la base"
    try:
        current = tuple(sorted(MigrationContext.configure(db.session.connection())
                               .get_current_heads()))
    except Exception:  # noqa: BLE001
        db.session.rollback()
        return Check("schema", label, False, "version du schéma illisible")
    heads = schema_heads()
    if current == heads:
        return Check("schema", label, True, f"schéma à jour (révision {', '.join(heads)})")
    found = f"schéma en révision {', '.join(current)}" if current else "schéma non versionné"
    return Check("schema", label, False, f"{found}, attendu {', '.join(heads)} : lancez "
                 "`kb init-db`")


def index() -> Check:
    from kb.search.backend import SearchUnavailable
    from kb.search.service import check_index

    label = "Index de recherche"
    try:
        drift = check_index()
    except SearchUnavailable:
        db.session.rollback()
        return Check("index", label, False, "index absent : lancez `kb index rebuild`")
    except Exception:  # noqa: BLE001
        db.session.rollback()
        log.exception("health: index check failed")
        return Check("index", label, False, "index illisible : lancez `kb index rebuild`")
    if drift.total:
        return Check("index", label, False, f"{drift.total} fiche(s) en écart avec la base "
                     "(absentes, périmées ou en trop) : lancez `kb index update`")
    return Check("index", label, True, "index conforme à la base")


def mail_queue(now: datetime | None = None) -> Check:
    from kb.mail import outbox

    label = "Courriels en attente"
    try:
        status = outbox.status(now)
    except Exception:  # noqa: BLE001
        db.session.rollback()
        return Check("mail_queue", label, False, "file des courriels illisible")
    age = status.oldest_pending_seconds
    waiting = status.pending + status.retrying
    if not waiting:
        return Check("mail_queue", label, True, "aucun courriel en attente")
    detail = f"{waiting} courriel(s) en attente, le plus ancien depuis {_duration(age)}"
    if age > MAIL_LATE_SECONDS:
        return Check("mail_queue", label, False, detail + " : vérifiez `kb mail send` et le "
                     "serveur de courriel")
    return Check("mail_queue", label, True, detail)


def scheduled_runs(now: datetime | None = None) -> list[Check]:
    from kb.ops.runs import SCHEDULED, last_runs

    now = now or utcnow()
    try:
        runs = last_runs()
    except Exception:  # noqa: BLE001 - not migrated yet: the schema check says so
        db.session.rollback()
        runs = {}
    checks = []
    for item in SCHEDULED:
        label = f"Tâche `kb {item.name}` ({item.every})"
        key = "run:" + item.name.replace(" ", "_")
        run = runs.get(item.name)
        if run is None:
            checks.append(Check(key, label, False, "jamais lancée : ajoutez-la à la crontab"))
            continue
        when = run.finished_at or run.started_at
        ago = _duration((now - when).total_seconds())
        if not run.ok:
            checks.append(Check(key, label, False, f"a échoué il y a {ago} ({run.error})"))
        elif now - when > item.late_after:
            checks.append(Check(key, label, False, f"dernière exécution il y a {ago} : la "
                                "ligne de la crontab ne tourne plus"))
        else:
            checks.append(Check(key, label, True, f"dernière exécution il y a {ago}"))
    return checks


def settings() -> list[Check]:
    config = current_app.config
    key = str(config.get("SECRET_KEY") or "")
    from_env = bool(os.environ.get("KB_SECRET_KEY"))
    secret = Check("secret_key", "Clé secrète", len(key) >= 16,
                   ("définie par KB_SECRET_KEY" if from_env else "gardée dans instance/secret_key")
                   if len(key) >= 16 else "KB_SECRET_KEY absente ou trop courte (16 caractères "
                   "au moins)")
    base = str(config.get("KB_BASE_URL") or "")
    base_url = Check("base_url", "Adresse publique", bool(base),
                     f"KB_BASE_URL = {base}" if base else "KB_BASE_URL non définie : les liens "
                     "des courriels et des exports suivent l'adresse servie")
    return [secret, base_url]


def mail_transport(timeout: float = 5.0) -> Check:
    label = "Serveur de courriel"
    url = str(current_app.config.get("KB_MAIL_URL") or "")
    if not url:
        return Check("mail_transport", label, True, "KB_MAIL_URL non définie : les courriels "
                     "sont écrits dans le journal")
    from kb.mail.message import MailError
    from kb.mail.sender import ConnectionFailure, probe

    parsed = urlparse(url)
    where = f"{parsed.hostname}:{parsed.port or (465 if parsed.scheme == 'smtps' else 25)}"
    try:
        probe(url, timeout)
    except MailError as exc:
        return Check("mail_transport", label, False, str(exc))
    except ConnectionFailure as exc:
        return Check("mail_transport", label, False, f"{where} injoignable ({exc})")
    return Check("mail_transport", label, True, f"{where} joignable")


def run_checks(cheap: bool = False, transport_timeout: float = 5.0) -> list[Check]:
    """The cheap checks (`/sante`): database, schema, index, pending mail. The others
    (`kb doctor`, the dashboard) add the scheduled commands, the settings and the mail
    server. When the database is unreachable, the checks that read it are not run."""
    first = database()
    if not first.ok:
        return [first]
    steps: list[Callable[[], Check | list[Check]]] = [schema, index, mail_queue]
    if not cheap:
        steps += [scheduled_runs, settings, lambda: mail_transport(transport_timeout)]
    checks = [first]
    for step in steps:
        result = step()
        checks.extend(result if isinstance(result, list) else [result])
    return checks
