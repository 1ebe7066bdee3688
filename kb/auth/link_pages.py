"""The page of an unusable link from a mail, for every blueprint whose views read such links."""

from __future__ import annotations

from flask import render_template, request

from kb.errors import LinkError
from kb.extensions import db

# What the page offers next, by the view that refused the link.
LINK_PURPOSES = {"auth.confirm": "confirm", "auth.reset_password": "reset",
                 "oidc.link_confirm": "oidc", "accounts.confirm_email_change": "email"}


def link_refused(exc: LinkError) -> tuple[str, int]:
    """The one answer to an unusable link (404 never valid, 410 used or expired), registered as
    the LinkError handler of the auth, oidc and accounts blueprints."""
    db.session.rollback()
    purpose = LINK_PURPOSES.get(request.endpoint or "", "confirm")
    return render_template("auth/link_error.html", error=str(exc), purpose=purpose), exc.status
