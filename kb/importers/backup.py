"""The `json` full backup (docs/formats.md): portable between SQLite and PostgreSQL.

Version 2 carries every table of the metadata except the ones `EXCLUDED` names (derived
data, rebuilt after a restore): a table added later is exported without anyone thinking of
it. Into an empty instance it restores every row with its id; into one that holds data, its
users and sheets (with their history) are merged as version 1 files are. Version 1 files
(users and sheets only) still import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Date, DateTime, Table, func, select, text, update

from kb.auth.models import Role, User
from kb.auth.operations import find_user
from kb.extensions import db
from kb.importers.common import Echo, ImportFailed
from kb.importers.upsert import upsert_sheet
from kb.sheets import operations
from kb.sheets.fields import ValidationError, empty_data, validate
from kb.sheets.models import Revision, RevisionStatus, Sheet, SheetState
from kb.timeutil import isoformat, parse_iso, utcnow
from kb.transaction import commit, mark_changed

FORMAT = "kb-backup"
VERSION = 2
READABLE = (1, 2)

# Tables not in the file, and why: each is rebuilt from the others after a restore.
EXCLUDED = {
    "search_documents": "index de recherche : reconstruit (kb index update)",
    "search_document_tags": "index de recherche : reconstruit (kb index update)",
    "search_words": "vocabulaire de l'index de recherche : reconstruit",
    "duplicate_features": "tables de recherche des doublons : recalculées à la publication",
    "duplicate_fingerprints": "tables de recherche des doublons : recalculées à la publication",
    "command_runs": "exécutions des tâches planifiées de cette installation",
    "publication_changes": "ce que chaque version a changé (cache des lecteurs) : repart de zéro",
}
BATCH = 500


def exported_tables() -> list[Table]:
    """Every table of the metadata but the excluded ones, parents before children."""
    return [t for t in db.metadata.sorted_tables if t.name not in EXCLUDED]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def write_tables(out: IO[str]) -> int:
    """Version 2: {"tables": {name: {"columns": [...], "rows": [[...], ...]}}}, one row a
    line, streamed table by table (memory stays flat). Returns the number of sheets."""
    out.write(f'{{"format": "{FORMAT}", "version": {VERSION}, '
              f'"exported_at": {json.dumps(isoformat(utcnow()))},\n"tables": {{')
    for n, table in enumerate(exported_tables()):
        columns = [c.name for c in table.columns]
        out.write(("," if n else "") + f'\n{json.dumps(table.name)}: {{"columns": '
                  f'{json.dumps(columns)}, "rows": [')
        keys = list(table.primary_key.columns) or list(table.columns)
        rows = db.session.execute(select(table).order_by(*keys).execution_options(
            yield_per=1000))
        for i, row in enumerate(rows):
            out.write(("," if i else "") + "\n" + json.dumps(
                [_jsonable(v) for v in row], ensure_ascii=False))
        out.write("]}")
    out.write("\n}}\n")
    return db.session.scalar(select(func.count(Sheet.id))) or 0


def _user_json(user: User) -> dict[str, Any]:
    return {"email": user.email, "display_name": user.display_name, "role": user.role,
            "trusted": user.trusted, "blocked": user.blocked,
            "created_at": isoformat(user.created_at), "password_hash": user.password_hash,
            "email_confirmed_at": isoformat(user.email_confirmed_at),
            "deleted_at": isoformat(user.deleted_at)}


def _revision_json(rev: Revision) -> dict[str, Any]:
    return {"id": rev.id, "author": rev.author.email, "created_at": isoformat(rev.created_at),
            "comment": rev.comment, "base_revision": rev.base_revision_id, "status": rev.status,
            "reviewed_by": rev.reviewed_by.email if rev.reviewed_by else None,
            "reviewed_at": isoformat(rev.reviewed_at), "review_reason": rev.review_reason,
            "data": rev.data}


def write_backup(out: IO[str]) -> int:
    return write_tables(out)


def write_backup_v1(out: IO[str]) -> int:
    """Version 1 (users and sheets): kept to test that such files still import."""
    out.write(f'{{"format": "{FORMAT}", "version": 1, '
              f'"exported_at": {json.dumps(isoformat(utcnow()))},\n"users": [\n')
    for i, user in enumerate(db.session.scalars(select(User).order_by(User.id))):
        out.write((",\n" if i else "") + json.dumps(_user_json(user), ensure_ascii=False))
    out.write('\n],\n"sheets": [\n')
    count = 0
    for sheet in db.session.scalars(select(Sheet).order_by(Sheet.id).execution_options(
            yield_per=200)):
        revisions = db.session.scalars(
            select(Revision).where(Revision.sheet_id == sheet.id).order_by(Revision.id))
        obj = {"slug": sheet.slug, "created_at": isoformat(sheet.created_at),
               "state": sheet.state,
               "merged_into": sheet.merged_into.slug if sheet.merged_into else None,
               "review_interval_months": sheet.review_interval_months,
               "last_reviewed_at": isoformat(sheet.last_reviewed_at),
               "revisions": [_revision_json(r) for r in revisions]}
        out.write((",\n" if count else "") + json.dumps(obj, ensure_ascii=False))
        count += 1
    out.write("\n]}\n")
    return count


def _user(email: str | None, users: dict[str, User]) -> User:
    if not email:
        return operations.system_user()
    if email not in users:
        user = find_user(email)
        if user is None:
            # An author known only from the history: an account of the past, as confirmed.
            user = User(email=email.lower(), role=Role.CONTRIBUTOR.value,
                        email_confirmed_at=utcnow())
            db.session.add(user)
            db.session.flush()
        users[email] = user
    return users[email]


def _restore_users(items: list[Any], users: dict[str, User]) -> None:
    for item in items:
        if not isinstance(item, dict) or not item.get("email"):
            raise ImportFailed("utilisateur sans « email » dans « users »")
        user = find_user(item["email"])
        if user is None:
            role = item.get("role", Role.CONTRIBUTOR.value)
            if role not in {r.value for r in Role}:
                raise ImportFailed(f"rôle inconnu pour {item['email']} : {role}")
            created = parse_iso(item.get("created_at")) or utcnow()
            user = User(email=item["email"].lower(), display_name=item.get("display_name", ""),
                        role=role, trusted=bool(item.get("trusted")),
                        blocked=bool(item.get("blocked")),
                        password_hash=item.get("password_hash"), created_at=created,
                        # Backups made before confirmation existed hold confirmed accounts.
                        email_confirmed_at=parse_iso(item["email_confirmed_at"])
                        if "email_confirmed_at" in item else created,
                        deleted_at=parse_iso(item.get("deleted_at")))
            db.session.add(user)
            db.session.flush()
        users[item["email"]] = user


def _restore_sheet(item: dict[str, Any], users: dict[str, User]) -> str:
    """A new slug gets its whole history; an existing one gets the file's approved text."""
    revisions = item.get("revisions") or []
    if not revisions:
        raise ValidationError({"revisions": "aucune révision"})
    slug = item.get("slug")
    existing = db.session.scalar(select(Sheet).where(Sheet.slug == slug)) if slug else None
    if existing is not None:
        approved = [r for r in revisions if r.get("status") == RevisionStatus.APPROVED]
        source = approved[-1] if approved else revisions[-1]
        outcome, _ = upsert_sheet(source.get("data") or {}, operations.system_user(),
                                  "Import json", slug=slug)
        return outcome
    sheet = Sheet(slug=slug or operations.unique_slug(revisions[-1]["data"].get("title", "")),
                  created_at=parse_iso(item.get("created_at")) or utcnow(),
                  review_interval_months=int(item.get("review_interval_months") or 12),
                  # A restored sheet is created in the state it had (not a lifecycle change).
                  state=SheetState(item.get("state") or SheetState.ACTIVE).value)
    db.session.add(sheet)
    db.session.flush()
    ids: dict[int, int] = {}
    last_approved: Revision | None = None
    for raw in revisions:
        data = validate({**empty_data(), **(raw.get("data") or {})})
        rev = Revision(
            sheet_id=sheet.id, author_id=_user(raw.get("author"), users).id, data=data,
            created_at=parse_iso(raw.get("created_at")) or utcnow(),
            comment=str(raw.get("comment") or "")[:300],
            base_revision_id=ids.get(raw.get("base_revision") or -1),
            status=raw.get("status") or RevisionStatus.PENDING.value,
            reviewed_by_id=_user(raw["reviewed_by"], users).id if raw.get("reviewed_by")
            else None,
            reviewed_at=parse_iso(raw.get("reviewed_at")),
            review_reason=str(raw.get("review_reason") or ""))
        if rev.status not in {s.value for s in RevisionStatus}:
            raise ValidationError({"status": f"statut inconnu « {rev.status} »"})
        db.session.add(rev)
        db.session.flush()
        if isinstance(raw.get("id"), int):
            ids[raw["id"]] = rev.id
        if rev.status == RevisionStatus.APPROVED:
            last_approved = rev
    if last_approved is not None:
        operations.publish(sheet, last_approved, when=last_approved.reviewed_at
                           or last_approved.created_at)
    sheet.last_reviewed_at = parse_iso(item.get("last_reviewed_at")) or sheet.last_reviewed_at
    mark_changed([sheet.id])
    return "created"


def import_backup(path: Path, echo: Echo) -> dict[str, int]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"{path} ligne {exc.lineno} : JSON invalide ({exc.msg})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ImportFailed(f"{path} n'est pas une sauvegarde « {FORMAT} »")
    if doc.get("version") not in READABLE:
        raise ImportFailed(f"version de sauvegarde non prise en charge : {doc.get('version')}")
    if doc["version"] == 2:
        tables = _tables(doc)
        if _instance_is_empty():
            return _load_all(tables, echo)
        echo("Cette instance contient déjà des comptes ou des fiches : seuls les comptes et les "
             "fiches (avec leur historique) sont fusionnés. Pour tout restaurer, importez dans "
             "une instance vide.")
        doc = _as_version_1(tables)
    return _merge(doc, echo)


# --- version 2 ---------------------------------------------------------------------------

Rows = dict[str, list[dict[str, Any]]]


def _tables(doc: dict[str, Any]) -> Rows:
    tables = doc.get("tables")
    if not isinstance(tables, dict):
        raise ImportFailed("sauvegarde de version 2 sans « tables »")
    rows: Rows = {}
    for name, content in tables.items():
        if not isinstance(content, dict) or not isinstance(content.get("columns"), list) \
                or not isinstance(content.get("rows"), list):
            raise ImportFailed(f"table « {name} » mal formée (attendu columns et rows)")
        columns = content["columns"]
        if any(not isinstance(r, list) or len(r) != len(columns) for r in content["rows"]):
            raise ImportFailed(f"table « {name} » : une ligne n'a pas {len(columns)} valeurs")
        rows[name] = [dict(zip(columns, r, strict=True)) for r in content["rows"]]
    return rows


def _instance_is_empty() -> bool:
    return not db.session.scalar(select(func.count(User.id))) and \
        not db.session.scalar(select(func.count(Sheet.id)))


def _converter(column: Any) -> Any:
    if isinstance(column.type, DateTime):
        return lambda v: datetime.fromisoformat(v) if isinstance(v, str) else v
    if isinstance(column.type, Date):
        return lambda v: date.fromisoformat(v) if isinstance(v, str) else v
    return lambda v: v


def _chunks(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def _load_all(tables: Rows, echo: Echo) -> dict[str, int]:
    """Every row with its id, in one transaction: parents first; a column pointing at a row
    not loaded yet (a sheet's approved revision, a merged sheet's survivor) is set after."""
    order = {t.name: i for i, t in enumerate(db.metadata.sorted_tables)}
    unknown = sorted(set(tables) - {t.name for t in exported_tables()})
    if unknown:
        echo(f"Tables ignorées (inconnues de cette version ou reconstruites) : {', '.join(unknown)}")
    later: list[tuple[Table, str, list[dict[str, Any]]]] = []
    loaded = 0
    for table in exported_tables():
        rows = tables.get(table.name) or []
        if not rows:
            continue
        convert = {c.name: _converter(c) for c in table.columns}
        # A foreign key to this table itself or to one loaded after it.
        late = [c.name for c in table.columns if any(
            order.get(fk.column.table.name, -1) >= order[table.name] for fk in c.foreign_keys)]
        key = next(iter(table.primary_key.columns)).name
        values = [{name: convert[name](v) for name, v in row.items() if name in table.c}
                  for row in rows]
        for name in late:
            pairs = [{"_key": v[key], "_value": v[name]} for v in values
                     if v.get(name) is not None]
            if pairs:
                later.append((table, name, pairs))
            for v in values:
                v[name] = None
        for chunk in _chunks(values):
            db.session.execute(table.insert(), chunk)
        loaded += len(values)
    from sqlalchemy import bindparam

    for table, name, pairs in later:
        key_column = next(iter(table.primary_key.columns))
        for chunk in _chunks(pairs):
            db.session.execute(update(table).where(key_column == bindparam("_key"))
                               .values({name: bindparam("_value")})
                               .execution_options(synchronize_session=False), chunk)
    _advance_sequences()
    sheet_ids = list(db.session.scalars(select(Sheet.id)))
    mark_changed(sheet_ids)  # the search index follows
    commit()
    counts = {"created": len(sheet_ids), "updated": 0, "unchanged": 0, "skipped": 0,
              "rows": loaded}
    echo(f"Instance restaurée : {len(sheet_ids)} fiche(s), {loaded} ligne(s) dans "
         f"{sum(1 for t in tables.values() if t)} table(s).")
    return counts


def _advance_sequences() -> None:
    """PostgreSQL: the next id of each table follows the ids loaded."""
    if db.engine.dialect.name != "postgresql":
        return
    for table in exported_tables():
        keys = list(table.primary_key.columns)
        if len(keys) == 1 and keys[0].autoincrement in (True, "auto") and \
                keys[0].type.python_type is int and not keys[0].foreign_keys:
            db.session.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{keys[0].name}'), "
                f"COALESCE(MAX({keys[0].name}), 0) + 1, false) FROM {table.name}"))


def _as_version_1(tables: Rows) -> dict[str, Any]:
    """The users and sheets of a version 2 file, shaped as version 1 for a merge."""
    users = tables.get("users") or []
    emails = {u["id"]: u["email"] for u in users}
    slugs = {s["id"]: s["slug"] for s in tables.get("sheets") or []}
    history: dict[int, list[dict[str, Any]]] = {}
    for rev in sorted(tables.get("revisions") or [], key=lambda r: r["id"]):
        history.setdefault(rev["sheet_id"], []).append({
            "id": rev["id"], "author": emails.get(rev["author_id"]),
            "created_at": rev["created_at"], "comment": rev.get("comment"),
            "base_revision": rev.get("base_revision_id"), "status": rev["status"],
            "reviewed_by": emails.get(rev.get("reviewed_by_id")),
            "reviewed_at": rev.get("reviewed_at"), "review_reason": rev.get("review_reason"),
            "data": rev.get("data")})
    sheets = [{"slug": s["slug"], "created_at": s.get("created_at"), "state": s.get("state"),
               "merged_into": slugs.get(s.get("merged_into_id")),
               "review_interval_months": s.get("review_interval_months"),
               "last_reviewed_at": s.get("last_reviewed_at"),
               "revisions": history.get(s["id"], [])}
              for s in tables.get("sheets") or []]
    return {"users": users, "sheets": sheets}


# --- version 1, and merges ----------------------------------------------------------------

def _merge(doc: dict[str, Any], echo: Echo) -> dict[str, int]:
    users: dict[str, User] = {}
    _restore_users(doc.get("users") or [], users)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "skipped": 0}
    merges: list[tuple[str, str]] = []
    for n, item in enumerate(doc.get("sheets") or [], start=1):
        try:
            counts[_restore_sheet(item, users)] += 1
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            counts["skipped"] += 1
            echo(f"fiche n°{n} ({item.get('slug') if isinstance(item, dict) else '?'}) "
                 f"ignorée : {exc}")
            continue
        if item.get("merged_into"):
            merges.append((item["slug"], item["merged_into"]))
    for slug, target in merges:
        sheet = db.session.scalar(select(Sheet).where(Sheet.slug == slug))
        survivor = db.session.scalar(select(Sheet).where(Sheet.slug == target))
        if sheet is not None and survivor is not None:
            sheet.merged_into_id = survivor.id
    commit()
    echo(f"{counts['created']} fiche(s) créée(s), {counts['updated']} mise(s) à jour, "
         f"{counts['unchanged']} inchangée(s), {counts['skipped']} ignorée(s).")
    return counts
