"""Hooks the auth domain offers to higher domains, so that it never imports them.

`oidc_signed_in` is sent (sender: the app) after a successful OpenID Connect sign-in (ProConnect
or another provider, kb/auth/oidc.py), before the commit, with `user` (the account signed in)
and `claims` (a dict: `issuer`, `sub`, `email`, `given_name`, `usual_name`, `uid`, `siret`, the
missing ones as ""). Receivers write in the same transaction as the sign-in (the structures
domain creates or joins the structure of `siret`); one that raises kb.auth.oidc.OidcError (a
French message) refuses the sign-in, which then leaves nothing behind. The last `siret` is
also kept on the identity row (kb.auth.models.Identity.siret) for later reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blinker import Namespace
from flask import current_app

if TYPE_CHECKING:
    from kb.auth.models import User

_signals = Namespace()
oidc_signed_in = _signals.signal("oidc-signed-in")


def send_oidc_signed_in(user: User, claims: dict[str, Any]) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    oidc_signed_in.send(app, user=user, claims=dict(claims))
