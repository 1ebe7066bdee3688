"""Sign-in through an OpenID Connect provider (ProConnect, the State's federation, or a
Département's own Keycloak): what a verified set of claims does to the accounts. The protocol
itself (discovery, PKCE, state, nonce, token signatures) is Authlib's, in kb/auth/oidc_views.py.

- An identity (issuer, `sub`) already known signs in to its account, whatever the address the
  provider gives today (kept on the identity row, with the last SIRET).
- Unknown, and no account has the address: a confirmed account is created (the provider
  vouches for the address), without a password ("Mot de passe oublié" sets one).
- Unknown, and an account has the address: nothing is linked until the person proves the
  account is theirs, by its password or by a link mailed to the address. The provider saying
  "this is x@y" is not enough: a provider with looser checks than ours would otherwise hand
  over any account.

Nothing commits here; the signal `kb.auth.signals.oidc_signed_in` is sent before the commit.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from kb.auth import operations
from kb.auth.models import AccountToken, Identity, TokenPurpose, User
from kb.auth.signals import send_oidc_signed_in
from kb.errors import KbError, LinkError
from kb.extensions import db
from kb.timeutil import utcnow
from kb.urls import base_url

LINK_PATH = "/connexion/oidc/relier/"


class OidcError(KbError):
    """A refused sign-in, with a French message shown on the sign-in page."""


@dataclass(frozen=True)
class Claims:
    """What the provider says about the person, ID token and userinfo merged and checked."""

    issuer: str
    sub: str
    email: str
    given_name: str = ""
    usual_name: str = ""
    uid: str = ""
    siret: str = ""

    @property
    def display_name(self) -> str:
        return " ".join(f"{self.given_name} {self.usual_name}".split())[:120]

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def claims_from(issuer: str, id_token: dict[str, Any], userinfo: dict[str, Any]) -> Claims:
    """Merge the validated ID token with the userinfo answer (which wins: ProConnect puts the
    person's data there). The userinfo `sub` must be the ID token's (OpenID Connect Core 5.3.2):
    otherwise the answer may belong to someone else."""
    sub = id_token.get("sub")  # compared and stored exactly as issued
    if not isinstance(sub, str) or not sub.strip() or len(sub) > 255 \
            or (userinfo.get("sub") is not None and userinfo.get("sub") != sub):
        raise OidcError("La réponse du fournisseur d'identité est incohérente (identifiant "
                        "différent) : connexion refusée.")
    merged = {**id_token, **userinfo}
    if merged.get("email_verified") is False:
        raise OidcError("Le fournisseur d'identité n'a pas vérifié votre adresse : connectez-vous "
                        "avec votre adresse et votre mot de passe.")
    email = operations.normalize_email(_text(merged.get("email")))
    if "@" not in email or len(email) > 254:
        raise OidcError("Le fournisseur d'identité n'a pas transmis d'adresse électronique : "
                        "impossible d'ouvrir un compte.")
    siret = "".join(_text(merged.get("siret")).split())
    return Claims(issuer=issuer, sub=sub, email=email,
                  given_name=_text(merged.get("given_name"))[:100],
                  # ProConnect: usual_name; Keycloak and most providers: family_name.
                  usual_name=_text(merged.get("usual_name") or merged.get("family_name"))[:100],
                  uid=_text(merged.get("uid"))[:255],
                  siret=siret if len(siret) == 14 and siret.isascii() and siret.isdigit() else "")


def find_identity(issuer: str, sub: str) -> Identity | None:
    return db.session.scalar(select(Identity).where(Identity.issuer == issuer,
                                                    Identity.subject == sub))


BLOCKED = "Ce compte est bloqué."


@dataclass
class SignIn:
    """`user`: signed in. `needs_proof`: the account with the provider's address, to link only
    after proof (kb/auth/oidc_views.py asks for it)."""

    user: User | None = None
    needs_proof: User | None = None


def _touch(identity: Identity, claims: Claims) -> None:
    identity.email = claims.email
    identity.siret = claims.siret or None
    identity.last_login_at = utcnow()


def sign_in(claims: Claims) -> SignIn:
    identity = find_identity(claims.issuer, claims.sub)
    if identity is not None:
        if not identity.user.is_active:
            raise OidcError(BLOCKED)
        _touch(identity, claims)
        send_oidc_signed_in(identity.user, claims.as_dict())
        return SignIn(user=identity.user)
    existing = operations.find_user(claims.email)
    if existing is not None:
        if not existing.is_active:
            raise OidcError(BLOCKED)
        return SignIn(needs_proof=existing)
    user = User(email=claims.email, display_name=claims.display_name, password_hash=None,
                email_confirmed_at=utcnow())
    db.session.add(user)
    db.session.flush()
    _link(user, claims)
    return SignIn(user=user)


def _link(user: User, claims: Claims) -> Identity:
    if find_identity(claims.issuer, claims.sub) is not None:
        raise OidcError("Ce compte du fournisseur d'identité est déjà relié à un autre compte.")
    identity = Identity(user=user, issuer=claims.issuer, subject=claims.sub, created_at=utcnow())
    _touch(identity, claims)
    db.session.add(identity)
    db.session.flush()
    send_oidc_signed_in(user, claims.as_dict())
    return identity


def link_with_password(user: User, password: str, claims: Claims) -> Identity:
    if not user.is_active:
        raise OidcError(BLOCKED)
    if not user.check_password(password):
        raise OidcError("Mot de passe incorrect.")
    return _link(user, claims)


# --- the mailed link ------------------------------------------------------------------------

def _lifetime() -> timedelta:
    # As short as a password reset: the link hands the account to the provider's identity.
    return timedelta(minutes=int(current_app.config.get("KB_RESET_LINK_MINUTES", 60)))


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="kb-oidc-link")


def mail_link(user: User, claims: Claims, provider: str) -> None:
    """Mail the account's address a single-use link that links this identity. The claims travel
    signed in the link; the row makes it single use and bounded in time."""
    now = utcnow()
    nonce = secrets.token_urlsafe(24)
    db.session.add(AccountToken(user_id=user.id, purpose=TokenPurpose.OIDC_LINK.value,
                                nonce_hash=operations.token_hash(nonce), new_email=user.email, created_at=now,
                                expires_at=now + _lifetime()))
    url = base_url() + LINK_PATH + _serializer().dumps({"n": nonce, "c": claims.as_dict()})
    operations._account_mail(user.email, f"Relier votre compte à {provider}", "oidc_link",
                             user=user, url=url, provider=provider,
                             provider_email=claims.email,
                             minutes=int(_lifetime().total_seconds() // 60))


def load_link(token: str) -> tuple[AccountToken, Claims]:
    """The stored row and the claims behind a mailed link, or LinkError."""
    try:
        data = _serializer().loads(token, max_age=int(_lifetime().total_seconds()))
        nonce, claims = str(data["n"]), Claims(**data["c"])
    except SignatureExpired as exc:
        raise LinkError("Ce lien a expiré.", 410) from exc
    except (BadSignature, KeyError, TypeError) as exc:
        raise LinkError("Ce lien n'est pas valide.") from exc
    row = operations.stored_link(nonce, TokenPurpose.OIDC_LINK)
    if row.new_email != row.user.email:  # the address changed since: the link no longer proves it
        raise LinkError("Ce lien n'est plus valide.", 410)
    return row, claims


def link_by_mail(token: str) -> tuple[User, Claims]:
    row, claims = load_link(token)
    row.used_at = utcnow()
    _link(row.user, claims)
    return row.user, claims
