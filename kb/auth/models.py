from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from kb.extensions import db
from kb.timeutil import utcnow

SYSTEM_EMAIL = "system@kb.local"


class Role(StrEnum):
    CONTRIBUTOR = "contributor"
    MODERATOR = "moderator"
    ADMIN = "admin"


# French labels of the roles (pages, CLI help); a role missing here shows its value.
ROLE_LABELS: dict[str, str] = {
    Role.CONTRIBUTOR: "contributeur",
    Role.MODERATOR: "modérateur",
    Role.ADMIN: "administrateur",
}


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


# Shown instead of the name of an account that was deleted (its contributions stay).
FORMER_CONTRIBUTOR = "ancien contributeur"


class User(UserMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(20), default=Role.CONTRIBUTOR.value)
    # Trusted contributors are approved at once (granted by a moderator).
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Set when the owner opened the confirmation link (or the account was made by an admin).
    # Until then the account may read and draft, but its proposals and reports do not count.
    email_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Part of the session id (Flask-Login alternative id): bumping it ends every session.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when the account was deleted: personal data erased, contributions kept.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Notification settings ("Mon compte"). Mails about the account itself are not optional.
    notify_contributions: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Days between two freshness digests; None: the site default, 0: never.
    reminder_period_days: Mapped[int | None] = mapped_column(Integer)
    moderator_digest: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # "La lettre des fiches" (kb/letters): the one letter gathering every optional mail.
    # reminder_period_days and moderator_digest above are what came before it: migration 0019
    # carried their opt-outs into letter_sections_off, nothing reads them any more.
    letter_period: Mapped[str] = mapped_column(String(10), default="month", server_default="month")
    letter_weekday: Mapped[int] = mapped_column(Integer, default=2, server_default="2")  # 0: lundi
    # Sections the person opted out of, comma-separated keys (kb/auth/preferences.py).
    letter_sections_off: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # The reader's commune (INSEE code, or ""): the proximity order of the thématique pages
    # when neither ?pres= nor the cookie says one (kb/sheets/proximity.py).
    commune_code: Mapped[str] = mapped_column(String(5), default="", server_default="")

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash or "", password)

    def get_id(self) -> str:
        # Flask-Login's alternative id: a cookie made before the version was bumped no longer
        # loads the user (kb.auth.views.load_user).
        return f"{self.id}:{self.session_version or 0}"

    def end_sessions(self) -> None:
        """Every session and remember cookie of this account stops working."""
        self.session_version = (self.session_version or 0) + 1

    @property
    def is_active(self) -> bool:  # Flask-Login refuses blocked and deleted accounts
        return not self.blocked and self.deleted_at is None

    @property
    def is_confirmed(self) -> bool:
        return self.email_confirmed_at is not None and self.deleted_at is None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    # What a role may do is decided in kb/auth/permissions.py (`can`), never here.

    @property
    def name(self) -> str:
        # Never derived from the e-mail address: that would publish part of it.
        if self.deleted_at is not None:
            return FORMER_CONTRIBUTOR
        return self.display_name or f"contributeur n° {self.id}"


class ApiToken(db.Model):  # type: ignore[name-defined]
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    # None: never expires (tokens made before expiries existed).
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="tokens")

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())


class TokenPurpose(StrEnum):
    CONFIRM = "confirm"  # confirm the address given at registration
    RESET = "reset"  # choose a new password
    EMAIL = "email"  # confirm a new address (the row holds it until then)
    OIDC_LINK = "oidc_link"  # link a sign-in from an OpenID Connect provider (kb/auth/oidc.py)


class AccountToken(db.Model):  # type: ignore[name-defined]
    """The stored half of a signed link sent by e-mail: the signature proves we issued it, the
    row makes it single use (`used_at`) and bounded in time (`expires_at`). Only a hash of the
    nonce is kept, so a copy of the database gives no usable link."""

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    new_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()



class Identity(db.Model):  # type: ignore[name-defined]
    """An account at an OpenID Connect provider (ProConnect, a Département's Keycloak) that signs
    in to `user`. Found by (issuer, subject) alone: the address at the provider may change, the
    account stays the same (kb/auth/oidc.py)."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    # As the provider last gave them: read by the structures domain (SIRET of the employer).
    email: Mapped[str] = mapped_column(String(254), default="")
    siret: Mapped[str | None] = mapped_column(String(14))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()
