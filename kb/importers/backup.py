"""The `json` full backup: users, sheets and their whole history (see docs/formats.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

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
VERSION = 1


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
    """Stream the backup: one sheet at a time, so memory stays flat."""
    out.write(f'{{"format": "{FORMAT}", "version": {VERSION}, '
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
    if doc.get("version") != VERSION:
        raise ImportFailed(f"version de sauvegarde non prise en charge : {doc.get('version')}")
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
