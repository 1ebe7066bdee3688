from __future__ import annotations

import secrets

from sqlalchemy import func, select

from kb.auth.models import ApiToken, Role, User
from kb.extensions import db
from kb.timeutil import utcnow


class AccountError(ValueError):
    pass


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def create_user(email: str, password: str, role: str = Role.CONTRIBUTOR.value,
                display_name: str = "") -> User:
    email = email.strip().lower()
    if role not in {r.value for r in Role}:
        raise AccountError(f"rôle inconnu « {role} » ({', '.join(r.value for r in Role)})")
    if find_user(email) is not None:
        raise AccountError("un compte existe déjà avec cette adresse")
    if len(password) < 8:
        raise AccountError("le mot de passe doit faire au moins 8 caractères")
    user = User(email=email, role=role, display_name=display_name.strip()[:120])
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def create_token(user: User) -> str:
    """Create an API token; the clear value is returned once and never stored."""
    token = secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=ApiToken.hash(token)))
    return token


def user_for_token(token: str) -> User | None:
    api_token = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(token))
    )
    if api_token is None or api_token.user.blocked:
        return None
    api_token.last_used_at = utcnow()
    return api_token.user
