"""One-click unsubscribe from the letter (RFC 8058): a GET shows a button, a POST unsubscribes,
with neither a session nor a CSRF token (the signed link stands for both)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from kb.errors import LinkError
from kb.extensions import csrf
from kb.letters import operations
from kb.transaction import commit

bp = Blueprint("letters", __name__)


@bp.route("/lettre/desabonnement/<token>", methods=["GET", "POST"])
@csrf.exempt  # only this route: mail clients POST "List-Unsubscribe=One-Click" with no cookie
def unsubscribe(token: str) -> tuple[str, int]:
    try:
        user, section = operations.read_unsubscribe(token)
    except LinkError as exc:
        return render_template("letters/unsubscribe.html", error=exc.message), exc.status
    label = operations.section_label(section)
    if request.method == "POST":
        operations.unsubscribe(user, section)
        commit()
        return render_template("letters/unsubscribe.html", done=True, label=label,
                               section=section), 200
    # GET only shows the button: link scanners in mail gateways must not unsubscribe anyone.
    return render_template("letters/unsubscribe.html", done=False, label=label,
                           section=section), 200
