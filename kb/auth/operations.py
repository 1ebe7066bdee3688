"""Accounts: creation, registration with a confirmed address, password reset, API tokens and
the signed links sent by e-mail. Nothing commits here; mails leave after the commit.

Forms that anyone may fill with an address (registration, "Renvoyer le lien", "Mot de passe
oublié") answer the same whatever the address, and each sends exactly one mail to the address
typed, which tells its owner what applies: the page and the time taken say nothing about
which addresses have an account.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from kb import mail
from kb.auth.models import SYSTEM_EMAIL, AccountToken, ApiToken, Role, TokenPurpose, User
from kb.auth.passwords import password_problem, verify_dummy
from kb.errors import Invalid, LinkError
from kb.extensions import db
from kb.mail import outbox as mail_outbox
from kb.timeutil import utcnow
from kb.transaction import record_apart
from kb.urls import base_url


class AccountError(Invalid):
    """A refused account action, with a French message (no final period); `field`: the form
    field it is about, when it is one."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalize_email(email)))


def check_password(password: str, email: str, name: str) -> None:
    problem = password_problem(password, email, name)
    if problem:
        raise AccountError(problem, "password")


def create_user(email: str, password: str, role: str = Role.CONTRIBUTOR.value,
                display_name: str = "", *, confirmed: bool = True) -> User:
    """An account. `confirmed`: made by an admin (`kb users create`), the address counts as
    confirmed; registration passes False and sends a confirmation link."""
    email = normalize_email(email)
    if role not in {r.value for r in Role}:
        raise AccountError(f"rôle inconnu « {role} » ({', '.join(r.value for r in Role)})")
    if find_user(email) is not None:
        raise AccountError("un compte existe déjà avec cette adresse")
    display_name = " ".join(display_name.split())[:120]
    check_password(password, email, display_name)
    user = User(email=email, role=role, display_name=display_name,
                email_confirmed_at=utcnow() if confirmed else None)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The account for these credentials, or None. An unknown address (or an account without a
    password) verifies a dummy hash, so that both take the time of a real check."""
    user = find_user(email) if email.strip() else None
    if user is None or not user.password_hash:
        verify_dummy(password)
        return None
    return user if user.check_password(password) else None


# --- API tokens -----------------------------------------------------------------------------

# Last use is written at most once a minute per token: enough to tell a live token from a
# forgotten one, without a write on every API call.
LAST_USE_PRECISION = timedelta(minutes=1)

UNCONFIRMED_TOKEN = ("confirmez d'abord l'adresse du compte (lien reçu par courriel) : un compte "
                     "à l'adresse non confirmée ne peut pas créer de jeton d'API")


def create_token(user: User, name: str = "", expires_at: datetime | None = None) -> str:
    """Create an API token; the clear value is returned once and never stored. Only for a
    confirmed address: whoever registered someone else's address must not keep a way in after
    its owner reclaims the account ("Mot de passe oublié")."""
    if not user.is_confirmed:
        raise AccountError(UNCONFIRMED_TOKEN)
    token = secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=ApiToken.hash(token),
                            name=" ".join(name.split())[:100], created_at=utcnow(),
                            expires_at=expires_at))
    return token


def list_tokens(user: User) -> list[ApiToken]:
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def revoke_token(token_id: int, owner: User | None = None) -> ApiToken:
    """Delete a token; `owner` given: only one of theirs (an admin's command passes None)."""
    row = db.session.get(ApiToken, token_id)
    if row is None or (owner is not None and row.user_id != owner.id):
        raise AccountError("jeton introuvable")
    db.session.delete(row)
    return row


def revoke_all_tokens(user: User) -> int:
    """Delete every API token of `user`; how many there were."""
    count = db.session.scalar(select(func.count(ApiToken.id)).where(
        ApiToken.user_id == user.id)) or 0
    db.session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    db.session.expire(user, ["tokens"])
    return count


def user_for_token(token: str) -> User | None:
    api_token = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(token))
    )
    if api_token is None or api_token.expired() or not api_token.user.is_active:
        return None
    now = utcnow()
    if api_token.last_used_at is None or api_token.last_used_at <= now - LAST_USE_PRECISION:
        # Kept even when the request only reads or fails: written apart from its transaction.
        record_apart(update(ApiToken).where(
            ApiToken.id == api_token.id,
            or_(ApiToken.last_used_at.is_(None),
                ApiToken.last_used_at <= now - LAST_USE_PRECISION)).values(last_used_at=now))
        set_committed_value(api_token, "last_used_at", now)
    return api_token.user


# --- signed links ---------------------------------------------------------------------------

def link_lifetime(purpose: TokenPurpose) -> timedelta:
    config = current_app.config
    if purpose is TokenPurpose.RESET:
        return timedelta(minutes=int(config.get("KB_RESET_LINK_MINUTES", 60)))
    return timedelta(hours=int(config.get("KB_CONFIRM_LINK_HOURS", 48)))


def _serializer(purpose: TokenPurpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"kb-account-{purpose}")


def token_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


LINK_PATHS = {TokenPurpose.CONFIRM: "/inscription/confirmer/",
              TokenPurpose.RESET: "/connexion/nouveau-mot-de-passe/",
              TokenPurpose.EMAIL: "/compte/adresse/confirmer/"}


def issue_link(user: User, purpose: TokenPurpose, new_email: str | None = None) -> str:
    """A signed, expiring, single-use link for `user`; `new_email`: the address it confirms."""
    now = utcnow()
    nonce = secrets.token_urlsafe(24)
    db.session.add(AccountToken(user_id=user.id, purpose=purpose.value, nonce_hash=token_hash(nonce),
                                new_email=new_email, created_at=now,
                                expires_at=now + link_lifetime(purpose)))
    token = _serializer(purpose).dumps(nonce)
    return f"{base_url()}{LINK_PATHS[purpose]}{token}"


def load_link(token: str, purpose: TokenPurpose) -> AccountToken:
    """The stored row behind a link, or LinkError. Does not consume it."""
    max_age = int(link_lifetime(purpose).total_seconds())
    try:
        nonce = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkError("Ce lien a expiré.", 410) from exc
    except BadSignature as exc:
        raise LinkError("Ce lien n'est pas valide.") from exc
    return stored_link(str(nonce), purpose)


def stored_link(nonce: str, purpose: TokenPurpose) -> AccountToken:
    """The unspent, unexpired row of a link's nonce, for an active account, or LinkError."""
    row = db.session.scalar(select(AccountToken).where(
        AccountToken.nonce_hash == token_hash(nonce), AccountToken.purpose == purpose.value))
    if row is None:
        raise LinkError("Ce lien n'est pas valide.")
    if row.used_at is not None:
        raise LinkError("Ce lien a déjà servi.", 410)
    if row.expires_at <= utcnow():
        raise LinkError("Ce lien a expiré.", 410)
    if not row.user.is_active:
        raise LinkError("Ce lien n'est plus valide.", 410)
    return row


def _use_links(user: User, purpose: TokenPurpose) -> None:
    """Spend every open link of this kind for `user` (the one used and any older one)."""
    db.session.execute(update(AccountToken).where(
        AccountToken.user_id == user.id, AccountToken.purpose == purpose.value,
        AccountToken.used_at.is_(None)).values(used_at=utcnow()))


def _account_mail(to: str, subject: str, template: str, **context: object) -> None:
    # Answers to the person's own action (a link to use now, a security notice): sent at once.
    message = mail.render(to, f"{subject} — Fiches initiatives", f"mail/account/{template}",
                          **context)
    mail.queue(replace(message, kind=f"account.{template}", transactional=True))


# --- registration ---------------------------------------------------------------------------

def _send_confirmation(user: User) -> None:
    url = issue_link(user, TokenPurpose.CONFIRM, new_email=user.email)
    _account_mail(user.email, "Confirmez votre adresse", "confirm", user=user, url=url,
                  hours=int(link_lifetime(TokenPurpose.CONFIRM).total_seconds() // 3600))


def register(email: str, password: str, display_name: str) -> None:
    """Create an unconfirmed account and mail its confirmation link; when the address already has
    an account, mail its owner instead. Raises AccountError only for what the form shows
    whatever the address (password rules, missing name)."""
    email = normalize_email(email)
    display_name = " ".join(display_name.split())
    if not display_name:
        raise AccountError("indiquez le nom à afficher", "display_name")
    check_password(password, email, display_name)
    existing = find_user(email)
    if existing is None:
        user = create_user(email, password, display_name=display_name, confirmed=False)
        _send_confirmation(user)
        return
    # The same cost as creating the account, and one mail to the address in both cases. No
    # confirmation link here: whoever registered the address first may not be its owner (the
    # owner takes the account over with "Mot de passe oublié", which confirms the address).
    User().set_password(password)
    _account_mail(existing.email, "Un compte existe déjà avec votre adresse", "exists")


def resend_confirmation(email: str) -> None:
    """"Renvoyer le lien": one mail to the address, whatever it is."""
    user = find_user(email)
    # A confirmed address that bounced (kb.mail suppression) is confirmed again the same way.
    if user is not None and user.is_active and (
            not user.is_confirmed or mail_outbox.suppression(user.email) is not None):
        _send_confirmation(user)
    else:
        _account_mail(normalize_email(email), "Confirmation d'adresse", "nothing_to_confirm",
                      user=user)


def confirm_email(token: str) -> User:
    row = load_link(token, TokenPurpose.CONFIRM)
    user = row.user
    if row.new_email != user.email:
        raise LinkError("Ce lien concerne une autre adresse que celle du compte.", 410)
    _use_links(user, TokenPurpose.CONFIRM)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    mail_outbox.clear_suppression(user.email)  # the person reads this address again
    return user


# --- passwords ------------------------------------------------------------------------------

def request_password_reset(email: str) -> None:
    """"Mot de passe oublié": one mail to the address, whatever it is."""
    email = normalize_email(email)
    user = find_user(email) if email else None
    if user is not None and user.email == SYSTEM_EMAIL:
        user = None
    if user is not None and user.is_active:
        url = issue_link(user, TokenPurpose.RESET)
        _account_mail(user.email, "Choisir un nouveau mot de passe", "reset", user=user, url=url,
                      minutes=int(link_lifetime(TokenPurpose.RESET).total_seconds() // 60))
    elif email:
        _account_mail(email, "Mot de passe oublié", "reset_unknown", blocked=user is not None)


def set_new_password(user: User, password: str, *, revoke_tokens: bool = False) -> int:
    """Every session ends; `revoke_tokens`: every API token too. How many tokens were revoked."""
    check_password(password, user.email, user.display_name)
    user.set_password(password)
    user.end_sessions()
    revoked = revoke_all_tokens(user) if revoke_tokens else 0
    _account_mail(user.email, "Votre mot de passe a été changé", "password_changed", user=user,
                  tokens_revoked=revoked)
    return revoked


def reset_password(token: str, password: str) -> tuple[User, int]:
    """Set the password from a reset link; every session and every API token of the account
    ends (a recovery: the account may be in someone else's hands, or was registered by someone
    else with this address). The link proves the owner reads the address, so an unconfirmed
    address counts as confirmed from now on. Returns the account and the tokens revoked."""
    row = load_link(token, TokenPurpose.RESET)
    user = row.user
    revoked = set_new_password(user, password, revoke_tokens=True)
    _use_links(user, TokenPurpose.RESET)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    return user, revoked


def change_password(user: User, current: str, new: str, *, revoke_tokens: bool = False) -> int:
    """Needs the current password; every other session ends (the caller logs this one in
    again with the new session id), and the API tokens when the owner asks. How many tokens
    were revoked."""
    if not user.check_password(current):
        raise AccountError("le mot de passe actuel est incorrect", "current")
    if current == new:
        raise AccountError("le nouveau mot de passe doit être différent de l'actuel", "password")
    revoked = set_new_password(user, new, revoke_tokens=revoke_tokens)
    _use_links(user, TokenPurpose.RESET)
    return revoked


# --- e-mail change --------------------------------------------------------------------------

def request_email_change(user: User, password: str, new_email: str) -> None:
    """Mail a confirmation link to the new address and a notice to the current one. The answer
    is the same when the new address already has an account (its owner is told instead)."""
    if not user.check_password(password):
        raise AccountError("le mot de passe est incorrect", "password")
    new_email = normalize_email(new_email)
    if new_email == user.email:
        raise AccountError("c'est déjà l'adresse de votre compte", "new_email")
    other = find_user(new_email)
    if other is None:
        url = issue_link(user, TokenPurpose.EMAIL, new_email=new_email)
        _account_mail(new_email, "Confirmez votre nouvelle adresse", "email_new", user=user,
                      url=url, hours=int(link_lifetime(TokenPurpose.EMAIL).total_seconds() // 3600))
    else:
        _account_mail(new_email, "Un compte existe déjà avec votre adresse", "email_taken")
    _account_mail(user.email, "Changement d'adresse demandé", "email_notice", user=user,
                  new_email=new_email, done=False)


def confirm_email_change(token: str) -> User:
    row = load_link(token, TokenPurpose.EMAIL)
    user, new_email = row.user, row.new_email or ""
    if find_user(new_email) is not None:
        raise LinkError("Cette adresse est déjà celle d'un autre compte.", 410)
    old_email = user.email
    user.email = new_email
    user.email_confirmed_at = utcnow()
    mail_outbox.clear_suppression(new_email)
    _use_links(user, TokenPurpose.EMAIL)
    _use_links(user, TokenPurpose.RESET)  # reset links went to the old address
    _account_mail(old_email, "Adresse de votre compte changée", "email_notice", user=user,
                  new_email=new_email, done=True)
    return user
