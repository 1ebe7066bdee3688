"""Signed one-click links for one person about one sheet (the letters' « Confirmer »,
« Complet »…), usable without signing in. Nothing is stored: the signature proves we issued
the link, it expires after KB_CONFIRM_TOKEN_DAYS, and a stamp of the state it was sent about
(each domain says which) makes it single use. Each domain keeps its own salt: a link of one
kind never opens another."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from kb.auth.models import User
from kb.errors import LinkError
from kb.extensions import db
from kb.sheets.models import Sheet

Stamp = int | str


@dataclass(frozen=True)
class SheetLink:
    sheet: Sheet
    user: User
    action: str
    stamp: Stamp  # the state it was sent about: the caller compares it with today's


def _serializer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def make_token(salt: str, sheet: Sheet, user: User, action: str, stamp: Stamp,
               now: datetime) -> str:
    expires = now + timedelta(days=current_app.config["KB_CONFIRM_TOKEN_DAYS"])
    return str(_serializer(salt).dumps({"s": sheet.id, "u": user.id, "a": action, "c": stamp,
                                        "e": int(expires.replace(tzinfo=UTC).timestamp())}))


def read_token(salt: str, token: str, actions: Container[str], viewer: object,
               now: datetime) -> SheetLink:
    """What a link says, or LinkError: forged, not one of `actions`, sent to someone other than
    the signed-in `viewer`, expired, its person or sheet gone, the sheet no longer published.
    Reading changes nothing (mail scanners open links: GET shows, POST applies)."""
    try:
        data = _serializer(salt).loads(token)
        sheet_id, user_id, action, expires = (int(data["s"]), int(data["u"]), str(data["a"]),
                                              int(data["e"]))
        stamp = data["c"]
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise LinkError("Ce lien n'est pas valide.") from exc
    if action not in actions or not isinstance(stamp, int | str):
        raise LinkError("Ce lien n'est pas valide.")
    if getattr(viewer, "is_authenticated", False) and getattr(viewer, "id", None) != user_id:
        raise LinkError("Ce lien a été envoyé à une autre personne : il ne peut servir qu'à "
                        "elle. Déconnectez-vous si c'est bien le vôtre.", 403)
    if now.replace(tzinfo=UTC).timestamp() >= expires:
        raise LinkError("Ce lien a expiré.", 410)
    user, sheet = db.session.get(User, user_id), db.session.get(Sheet, sheet_id)
    if user is None or sheet is None or user.blocked or user.deleted_at is not None:
        raise LinkError("Ce lien n'est plus valide.", 410)
    if not sheet.is_published:
        raise LinkError("Cette fiche n'est plus publiée : ce lien ne sert plus.", 410)
    return SheetLink(sheet, user, action, stamp)
