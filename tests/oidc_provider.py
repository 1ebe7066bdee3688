"""A real OpenID Connect provider on loopback for tests, in the spirit of ProConnect: discovery,
authorization (consent given at once, or refused), token endpoint checking the client secret,
the redirect URI, PKCE S256 and single-use codes, RS256 ID tokens, userinfo as JSON or as a
signed JWT (`application/jwt`, as ProConnect answers), JWKS, and end_session.

Served by werkzeug's make_server from a thread; `provider.tamper` bends the next ID tokens
(wrong nonce, expired, signed with a key that is not published) to check the client refuses
them. oidc-provider-mock 0.3.4 (the version this machine's package index holds) answers userinfo
in JSON only, asks for a confirmation form at end_session and has no setting for an expired,
mis-signed or wrong-nonce ID token: hence this one.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CLIENT_ID = "kb-test-client"
CLIENT_SECRET = "kb-test-secret"

_KEYS: dict[str, RSAKey] = {}


def _key(name: str) -> RSAKey:
    # RSA generation is slow-ish: once per test session and name.
    if name not in _KEYS:
        _KEYS[name] = RSAKey.generate_key(2048, parameters={"kid": name, "use": "sig"})
    return _KEYS[name]


@dataclass
class Person:
    sub: str = "agent-0001"
    email: str = "agent@departement.gouv.fr"
    given_name: str = "Anne"
    usual_name: str = "Agent"
    uid: str = "a-0001"
    siret: str = "21290001100016"

    def claims(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Provider:
    issuer: str = ""
    person: Person = field(default_factory=Person)
    signed_userinfo: bool = True
    deny: bool = False
    # Applied to the next ID tokens: {"nonce": "x"}, {"exp": <past>}, {"key": "rogue"}.
    tamper: dict[str, Any] = field(default_factory=dict)
    # The same for the userinfo answer ({"sub": ...}, {"key": "rogue"}).
    tamper_userinfo: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, Person] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)

    # --- endpoints ---------------------------------------------------------------------------

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        handler = {
            "/.well-known/openid-configuration": self.discovery, "/authorize": self.authorize,
            "/token": self.token, "/userinfo": self.userinfo, "/jwks": self.jwks,
            "/session/end": self.end_session,
        }.get(request.path)
        response = handler(request) if handler else Response("not found", 404)
        return response(environ, start_response)

    def discovery(self, request: Request) -> Response:
        i = self.issuer
        return _json({
            "issuer": i, "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token", "userinfo_endpoint": f"{i}/userinfo",
            "jwks_uri": f"{i}/jwks", "end_session_endpoint": f"{i}/session/end",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "userinfo_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "given_name", "usual_name", "uid", "siret"],
        })

    def authorize(self, request: Request) -> Response:
        args = request.args.to_dict()
        self.authorize_requests.append(args)
        target = args["redirect_uri"]
        if self.deny:
            return _redirect(target, error="access_denied", state=args.get("state", ""))
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**args, "person": Person(**self.person.claims())}
        return _redirect(target, code=code, state=args.get("state", ""))

    def token(self, request: Request) -> Response:
        form = request.form.to_dict()
        self.token_requests.append(form)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return _json({"error": "invalid_client"}, 401)
        grant = self.codes.pop(form.get("code", ""), None)  # a code serves once
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return _json({"error": "invalid_grant"}, 400)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant.get("code_challenge_method") != "S256" or grant.get("code_challenge") != challenge:
            return _json({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        person: Person = grant["person"]
        access = secrets.token_urlsafe(16)
        self.tokens[access] = person
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": person.sub, "aud": CLIENT_ID, "iat": now,
                  "exp": now + 60, "nonce": grant.get("nonce"), "acr": "eidas1"}
        tamper = dict(self.tamper)
        key = _key(tamper.pop("key", "provider"))
        claims.update(tamper)
        id_token = jwt.encode({"alg": "RS256", "kid": "provider"}, claims, key)
        return _json({"access_token": access, "token_type": "Bearer", "expires_in": 60,  # as ProConnect
                      "id_token": id_token, "scope": grant.get("scope", "")})

    def userinfo(self, request: Request) -> Response:
        person = self.tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if person is None:
            return _json({"error": "invalid_token"}, 401)
        claims = person.claims()
        tamper = dict(self.tamper_userinfo)
        key = _key(tamper.pop("key", "provider"))
        claims.update(tamper)
        if not self.signed_userinfo:
            return _json(claims)
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": int(time.time()), **claims}
        body = jwt.encode({"alg": "RS256", "kid": "provider"}, claims, key)
        return Response(body, content_type="application/jwt")

    def jwks(self, request: Request) -> Response:
        return _json(KeySet([_key("provider")]).as_dict(private=False))

    def end_session(self, request: Request) -> Response:
        args = request.args.to_dict()
        self.logouts.append(args)
        return _redirect(args["post_logout_redirect_uri"], state=args.get("state", ""))


def _json(data: Any, status: int = 200) -> Response:
    import json

    return Response(json.dumps(data), status=status, content_type="application/json")


def _redirect(target: str, **params: str) -> Response:
    separator = "&" if "?" in target else "?"
    return Response(status=302, headers={"Location": f"{target}{separator}{urlencode(params)}"})


@pytest.fixture(name="oidc_provider")
def oidc_provider_fixture() -> Iterator[Provider]:
    provider = Provider()
    server = make_server("127.0.0.1", 0, provider, threaded=True)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    provider.stop = lambda: (server.shutdown(), server.server_close())  # type: ignore[attr-defined]
    try:
        yield provider
    finally:
        if thread.is_alive():
            server.shutdown()
            server.server_close()
