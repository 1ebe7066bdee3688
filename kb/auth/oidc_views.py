"""Sign-in through an OpenID Connect provider ("S'identifier avec ProConnect"), with Authlib's
Flask client: discovery, authorization code with PKCE (S256), `state` and `nonce` checked, ID
token signature, issuer, audience and expiry validated (Authlib), userinfo as JSON or as a
signed JWT (ProConnect signs it: verified here against the provider's JWKS), and logout
through the provider's `end_session_endpoint`. What the claims do to accounts: kb/auth/oidc.py.

Offered only when KB_OIDC_ISSUER, KB_OIDC_CLIENT_ID and KB_OIDC_CLIENT_SECRET are set; the
routes answer 404 otherwise. Any failure (provider down, tampered state, replayed code, refused
consent, a token that does not verify) shows a French message on the sign-in page, after a
rollback: nothing is half-created.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import login_user
from flask_wtf import FlaskForm
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from werkzeug.wrappers import Response
from wtforms import PasswordField
from wtforms.validators import DataRequired

from kb.auth import oidc as core
from kb.auth.forms import ButtonForm, LoginForm
from kb.auth.link_pages import link_refused
from kb.auth.models import User
from kb.errors import LinkError
from kb.extensions import db
from kb.redirects import safe_next
from kb.transaction import commit
from kb.urls import base_url

bp = Blueprint("oidc", __name__)
bp.register_error_handler(LinkError, link_refused)

CLIENT = "kb_oidc_client"
PENDING = "kb_oidc_pending"  # claims waiting for proof that the account with their address is theirs
ID_TOKEN = "kb_oidc_id_token"  # id_token_hint for the provider's logout
NEXT = "kb_oidc_next"


def configured(config: Any) -> bool:
    return all(config.get(k) for k in ("KB_OIDC_ISSUER", "KB_OIDC_CLIENT_ID",
                                       "KB_OIDC_CLIENT_SECRET"))


def init_app(app: Flask) -> None:
    if not configured(app.config):
        return
    config = app.config
    oauth = OAuth(app)
    oauth.register(
        "oidc",
        client_id=config["KB_OIDC_CLIENT_ID"],
        client_secret=config["KB_OIDC_CLIENT_SECRET"],
        server_metadata_url=config["KB_OIDC_ISSUER"] + "/.well-known/openid-configuration",
        client_kwargs={"scope": config["KB_OIDC_SCOPES"], "code_challenge_method": "S256",
                       "token_endpoint_auth_method": config["KB_OIDC_AUTH_METHOD"],
                       # requests waits forever by default: a provider that hangs would hold
                       # a worker.
                       "default_timeout": config["KB_OIDC_TIMEOUT"]},
    )
    app.extensions[CLIENT] = oauth.create_client("oidc")


def _client() -> Any:
    client = current_app.extensions.get(CLIENT)
    if client is None:
        abort(404)
    return client


def provider_name() -> str:
    return str(current_app.config.get("KB_OIDC_NAME") or "ProConnect")


@bp.app_context_processor
def inject_provider() -> dict[str, Any]:
    return {"oidc_provider": provider_name() if CLIENT in current_app.extensions else ""}


# --- refusals -------------------------------------------------------------------------------

def _down() -> str:
    name = provider_name()
    return (f"{name} ne répond pas pour le moment : réessayez dans quelques minutes, ou "
            "connectez-vous avec votre adresse et votre mot de passe.")


def _unverified() -> str:
    return (f"La réponse de {provider_name()} n'a pas pu être vérifiée : connexion refusée. "
            "Recommencez ; si cela se reproduit, connectez-vous avec votre adresse et votre "
            "mot de passe.")


def _stale() -> str:
    return (f"La connexion avec {provider_name()} n'a pas abouti : la demande a expiré, a déjà "
            "servi ou ne vient pas de ce navigateur. Recommencez.")


def _refuse(message: str, status: int) -> tuple[str, int]:
    db.session.rollback()
    return render_template("auth/login.html", form=LoginForm(formdata=None),
                           oidc_error=message), status


def _check_issuer(client: Any) -> dict[str, Any]:
    """The discovery document, which must name the configured issuer (OpenID Connect
    Discovery 4.3): Authlib checks the ID token's `iss` against it."""
    metadata: dict[str, Any] = client.load_server_metadata()
    # A trailing slash is the one difference tolerated (KB_OIDC_ISSUER is kept without it).
    if str(metadata.get("issuer") or "").rstrip("/") != current_app.config["KB_OIDC_ISSUER"]:
        raise core.OidcError(f"{provider_name()} est mal configuré ici (émetteur inattendu) : "
                             "connectez-vous avec votre adresse et votre mot de passe.")
    return metadata


# --- sign-in --------------------------------------------------------------------------------

@bp.get("/connexion/oidc")
def start() -> Any:
    client = _client()
    session[NEXT] = safe_next(request.args.get("next"), url_for("sheets.home"))
    try:
        _check_issuer(client)
        return client.authorize_redirect(base_url() + url_for("oidc.callback"),
                                         nonce=secrets.token_urlsafe(24))
    except core.OidcError as exc:
        return _refuse(str(exc), 502)
    except (requests.RequestException, ValueError, KeyError):
        return _refuse(_down(), 502)


def _userinfo(client: Any, metadata: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    """The userinfo answer: JSON, or a JWT signed with one of the provider's keys, issued by it
    and for us (ProConnect answers `application/jwt`)."""
    endpoint = metadata.get("userinfo_endpoint")
    if not endpoint:
        return {}
    # The token is used at once: Authlib's own check would count ProConnect's 60-second access
    # tokens as expired already (it keeps a 60-second margin).
    response = client.get(endpoint, withhold_token=True,
                          headers={"Authorization": f"Bearer {token['access_token']}"})
    response.raise_for_status()
    mimetype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if mimetype != "application/jwt":
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError("la réponse userinfo n'est pas un objet JSON")
        return data
    # Only the provider's public keys verify it: never "none", never a shared secret.
    algorithms = [a for a in metadata.get("userinfo_signing_alg_values_supported")
                  or ["RS256", "ES256"] if a[:2] in ("RS", "PS", "ES", "Ed")]
    try:
        decoded = jwt.decode(response.text.strip(), KeySet.import_key_set(client.fetch_jwk_set()),
                             algorithms=algorithms)
    except InvalidKeyIdError:  # the provider rotated its keys since we fetched them
        decoded = jwt.decode(response.text.strip(),
                             KeySet.import_key_set(client.fetch_jwk_set(force=True)),
                             algorithms=algorithms)
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": metadata["issuer"]},
                          aud={"essential": True, "value": client.client_id},
                          leeway=120).validate(decoded.claims)
    return dict(decoded.claims)


@bp.get("/connexion/oidc/retour")
def callback() -> Any:
    client = _client()
    name = provider_name()
    error = request.args.get("error")
    if error:
        client.framework.clear_state_data(session, request.args.get("state"))
        if error == "access_denied":
            return _refuse(f"Vous avez refusé de transmettre vos informations : la connexion avec "
                           f"{name} est annulée.", 403)
        return _refuse(f"{name} a refusé la connexion ({error[:60]}). Recommencez, ou "
                       "connectez-vous avec votre adresse et votre mot de passe.", 400)
    try:
        metadata = _check_issuer(client)
        # State, PKCE, the ID token's signature, expiry and nonce: Authlib. Its issuer and
        # audience are named here: Authlib alone checks `azp`, not that `aud` holds our id.
        token = client.authorize_access_token(claims_options={
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": client.client_id}})
        if not token.get("userinfo"):
            raise core.OidcError(f"{name} n'a pas transmis de jeton d'identité : connexion "
                                 "refusée.")
        claims = core.claims_from(metadata["issuer"], dict(token["userinfo"]),
                                  _userinfo(client, metadata, token))
        result = core.sign_in(claims)
    except MismatchingStateError:
        return _refuse(_stale(), 400)
    except OAuthError as exc:
        if exc.error == "invalid_grant":  # the code was used already, or expired
            return _refuse(_stale(), 400)
        return _refuse(_unverified(), 400)
    except (JoseError, AuthlibBaseError):  # signature, issuer, audience, expiry, nonce
        return _refuse(_unverified(), 400)
    except core.OidcError as exc:
        return _refuse(str(exc), 403)
    except (requests.RequestException, ValueError, KeyError):
        return _refuse(_down(), 502)
    if result.needs_proof is not None:
        db.session.rollback()  # nothing is written before the proof
        session[PENDING] = {"claims": claims.as_dict(), "user_id": result.needs_proof.id,
                            "id_token": token["id_token"]}
        return redirect(url_for("oidc.link"))
    assert result.user is not None
    commit()
    return _log_in(result.user, token["id_token"])


def _log_in(user: User, id_token: str) -> Response:
    login_user(user)
    session[ID_TOKEN] = id_token
    flash(f"Vous êtes connecté·e avec {provider_name()}.", "success")
    return redirect(session.pop(NEXT, None) or url_for("sheets.home"))


# --- an account with the same address: proof first ------------------------------------------

class LinkPasswordForm(FlaskForm):
    password = PasswordField("Mot de passe de ce compte",
                             validators=[DataRequired("Indiquez le mot de passe.")])


def _pending() -> tuple[User, core.Claims, dict[str, Any]] | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    user = db.session.get(User, pending.get("user_id"))
    if user is None:
        return None
    return user, core.Claims(**pending["claims"]), pending


@bp.route("/connexion/oidc/relier", methods=["GET", "POST"])
def link() -> Any:
    _client()
    found = _pending()
    if found is None:
        flash(f"Recommencez la connexion avec {provider_name()}.", "info")
        return redirect(url_for("auth.login"))
    user, claims, pending = found
    form = LinkPasswordForm()
    if form.validate_on_submit():
        try:
            core.link_with_password(user, form.password.data or "", claims)
        except core.OidcError as exc:
            db.session.rollback()
            form.password.errors = [str(exc)]
        else:
            commit()
            session.pop(PENDING, None)
            return _log_in(user, pending["id_token"])
    return render_template("auth/oidc_link.html", form=form, mail_form=ButtonForm(formdata=None),
                           user=user, claims=claims), 422 if form.errors else 200


@bp.post("/connexion/oidc/relier/courriel")
def link_mail() -> Any:
    _client()
    found = _pending()
    if found is None:
        return redirect(url_for("oidc.link"))
    if not ButtonForm().validate_on_submit():
        abort(400)
    user, claims, _ = found
    core.mail_link(user, claims, provider_name())
    commit()
    return render_template("auth/mail_sent.html", title="Vérifiez votre messagerie",
                           text=f"Un courriel vient de partir vers l'adresse du compte. Ouvrez "
                                f"le lien qu'il contient pour relier ce compte à "
                                f"{provider_name()}.")


@bp.route("/connexion/oidc/relier/<token>", methods=["GET", "POST"])
def link_confirm(token: str) -> Any:
    """GET shows one button, POST links: mail scanners that open links must not spend them."""
    _client()
    row, claims = core.load_link(token)
    form = ButtonForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("auth/oidc_link_confirm.html", row=row, claims=claims,
                                   form=form), 400
        try:
            user, claims = core.link_by_mail(token)
        except core.OidcError as exc:
            db.session.rollback()
            return render_template("auth/link_error.html", error=str(exc), purpose="oidc"), 409
        commit()
        found = _pending()
        if found is not None and found[1].issuer == claims.issuer and found[1].sub == claims.sub:
            # The same browser that signed in at the provider: both proofs are here.
            session.pop(PENDING, None)
            return _log_in(user, found[2]["id_token"])
        flash(f"Votre compte est relié à {provider_name()} : connectez-vous avec "
              f"{provider_name()}.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/oidc_link_confirm.html", row=row, claims=claims, form=form)


# --- logout ---------------------------------------------------------------------------------

def end_session() -> Response | None:
    """After the local logout: the redirection that ends the session at the provider too
    (RP-initiated logout, with id_token_hint, post_logout_redirect_uri and state), or None
    when the session did not come from it or the provider cannot be reached."""
    id_token = session.pop(ID_TOKEN, None)
    client = current_app.extensions.get(CLIENT)
    if not id_token or client is None:
        return None
    try:
        if not client.load_server_metadata().get("end_session_endpoint"):
            return None
        response: Response = client.logout_redirect(
            post_logout_redirect_uri=base_url() + url_for("oidc.logged_out"),
            id_token_hint=id_token, state=secrets.token_urlsafe(24))
    except (requests.RequestException, ValueError, KeyError, RuntimeError):
        return None
    return response


@bp.get("/deconnexion/oidc")
def logged_out() -> Response:
    client = _client()
    try:
        client.validate_logout_response()
    except OAuthError:
        flash("Vous êtes déconnecté·e de ce site.", "info")
    else:
        flash(f"Vous êtes déconnecté·e, ici et sur {provider_name()}.", "success")
    return redirect(url_for("sheets.home"))


@bp.after_app_request
def allow_provider_logout(response: Response) -> Response:
    """The logout form posts here, then the browser is sent to the provider: CSP `form-action`
    also governs that redirection, so pages of a session opened at the provider allow its
    logout address."""
    client = current_app.extensions.get(CLIENT)
    policy = response.headers.get("Content-Security-Policy", "")
    if client is None or "form-action 'self'" not in policy or not session.get(ID_TOKEN):
        return response
    endpoint = (client.server_metadata or {}).get("end_session_endpoint") \
        or current_app.config["KB_OIDC_ISSUER"]
    parts = urlsplit(str(endpoint))
    if parts.scheme in ("http", "https") and parts.netloc:
        response.headers["Content-Security-Policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}", 1)
    return response
