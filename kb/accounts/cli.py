"""`kb users list|create|set-role|block|unblock|delete`, `kb tokens create|list|revoke` and
`kb moderation digest` (an alias of `kb mail letters`). Roles are the rows of the capability
table (kb/auth/permissions.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import click
from flask.cli import with_appcontext

from kb.auth.models import Role, User
from kb.auth.permissions import ROLE_CAPABILITIES
from kb.letters.cli import alias

ROLE_CHOICE = click.Choice([str(role) for role in ROLE_CAPABILITIES])


def _account(email: str) -> User:
    from kb.auth.operations import find_user

    user = find_user(email)
    if user is None or user.is_deleted:
        raise click.ClickException(f"aucun compte pour {email}")
    return user


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group("users")
def users() -> None:
    """Manage accounts."""


@users.command("create")
@click.argument("email")
@click.option("--role", type=ROLE_CHOICE, default=Role.CONTRIBUTOR.value, show_default=True)
@click.option("--password", help="Asked for (twice) when not given.")
@click.option("--name", "display_name", default="", help="Displayed name.")
@with_appcontext
def users_create(email: str, role: str, password: str | None, display_name: str) -> None:
    """Create an account (its address counts as confirmed)."""
    from kb.auth.operations import AccountError, create_user
    from kb.cli_french import prompt_password
    from kb.transaction import commit

    if password is None:
        password = prompt_password()
    try:
        create_user(email, password, role, display_name, confirmed=True)
    except AccountError as exc:
        raise _fail(exc) from exc
    commit()
    click.echo(f"Compte créé : {email} ({role}).")


@users.command("list")
@click.option("--role", type=ROLE_CHOICE, default=None, help="Only this role.")
@with_appcontext
def users_list(role: str | None) -> None:
    """One account per line: id, e-mail, role, state, name."""
    from sqlalchemy import select

    from kb.auth.models import SYSTEM_EMAIL
    from kb.extensions import db

    query = select(User).where(User.email != SYSTEM_EMAIL).order_by(User.id)
    if role:
        query = query.where(User.role.in_([role]))
    for user in db.session.scalars(query):
        state = ("supprimé" if user.is_deleted else "bloqué" if user.blocked
                 else "non confirmé" if not user.is_confirmed
                 else "de confiance" if user.trusted else "actif")
        email = "-" if user.is_deleted else user.email
        click.echo(f"{user.id}\t{email}\t{user.role}\t{state}\t{user.name}")


@users.command("set-role")
@click.argument("email")
@click.argument("role", type=ROLE_CHOICE)
@with_appcontext
def users_set_role(email: str, role: str) -> None:
    """Give EMAIL the role ROLE."""
    from kb.accounts.operations import set_role
    from kb.auth.operations import AccountError
    from kb.transaction import commit

    user = _account(email)
    try:
        set_role(user, role, None, "kb users set-role")
    except AccountError as exc:
        raise _fail(exc) from exc
    commit()
    click.echo(f"{email} : {role}.")


@users.command("block")
@click.argument("email")
@click.option("--reason", required=True, help="Why (kept in the moderation log).")
@click.option("--unblock", is_flag=True, help="Unblock instead.")
@with_appcontext
def users_block(email: str, reason: str, unblock: bool) -> None:
    """Block EMAIL: its sessions and tokens stop working, its pending proposals are refused."""
    from kb.accounts.operations import block
    from kb.moderation.operations import unblock_user
    from kb.sheets.operations import system_user
    from kb.transaction import commit

    user = _account(email)
    try:
        if unblock:
            unblock_user(user, system_user(), reason)
        else:
            refused = block(user, None, reason)
    except ValueError as exc:
        raise _fail(exc) from exc
    commit()
    click.echo(f"{email} débloqué." if unblock
               else f"{email} bloqué ; {len(refused)} proposition(s) en attente refusée(s).")


@click.group("tokens")
def tokens() -> None:
    """Manage API tokens."""


def _expiry(value: str, default_days: int) -> datetime | None:
    """"90" or "90d" (days), "2027-01-31" (a date), "never"/"jamais"; empty: the default."""
    from kb.timeutil import utcnow

    value = value.strip().lower()
    if value in ("never", "jamais"):
        return None
    if not value:
        return utcnow() + timedelta(days=default_days)
    days = value[:-1] if value.endswith(("d", "j")) else value
    if days.isdecimal() and days.isascii():
        if int(days) <= 0:
            raise click.BadParameter("le nombre de jours doit être positif")
        return utcnow() + timedelta(days=int(days))
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("attendu : un nombre de jours (90), une date "
                                 "(2027-01-31) ou « never »") from exc
    if when <= utcnow():
        raise click.BadParameter("la date d'expiration est passée")
    return when


@tokens.command("create")
@click.argument("email")
@click.option("--name", default="", help="What the token is for (shown in the list).")
@click.option("--expires", default="", help="Days (90), a date (2027-01-31) or 'never'; "
              "default KB_TOKEN_DAYS.")
@with_appcontext
def tokens_create(email: str, name: str, expires: str) -> None:
    """Create an API token for EMAIL and print it (shown once)."""
    from flask import current_app

    from kb.auth.operations import AccountError, create_token
    from kb.transaction import commit

    user = _account(email)
    expires_at = _expiry(expires, int(current_app.config["KB_TOKEN_DAYS"]))
    try:
        token = create_token(user, name or "kb tokens create", expires_at)
    except AccountError as exc:  # an unconfirmed address
        raise _fail(exc) from exc
    commit()
    click.echo(token)


@tokens.command("list")
@click.argument("email")
@with_appcontext
def tokens_list(email: str) -> None:
    """EMAIL's tokens: id, name, created, last used, expiry."""
    from kb.auth.operations import list_tokens
    from kb.timeutil import isoformat

    for token in list_tokens(_account(email)):
        state = " (expiré)" if token.expired() else ""
        click.echo(f"{token.id}\t{token.name or '-'}\tcréé {isoformat(token.created_at)}\t"
                   f"utilisé {isoformat(token.last_used_at) or 'jamais'}\t"
                   f"expire {isoformat(token.expires_at) or 'jamais'}{state}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    """Revoke (delete) the token TOKEN_ID: calls with it answer 401 from now on."""
    from kb.auth.operations import AccountError, revoke_token
    from kb.transaction import commit

    try:
        row = revoke_token(token_id)
    except AccountError as exc:
        raise _fail(exc) from exc
    commit()
    click.echo(f"Jeton {token_id} révoqué ({row.name or 'sans nom'}).")


@click.group("moderation")
def moderation() -> None:
    """Moderators' mails."""


# The moderators' digest now comes through the letter ("Pour la modération").
moderation.add_command(alias("digest", "résumé quotidien de modération"))
