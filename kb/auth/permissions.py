"""Who may do what: the one place that decides. Views, the API, operations and templates ask
`can(user, capability, obj)`; nothing else compares roles.

A role is one row of ROLE_CAPABILITIES. Account state (blocked, trusted) and an object's owner
are the only other inputs, each ruled once below.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any, Protocol, runtime_checkable

from kb.auth.identity import current_actor, unauthenticated
from kb.auth.models import Role, User
from kb.errors import PermissionDenied


class Capability(StrEnum):
    CONTRIBUTE = "contribute"  # create sheets and propose edits
    PUBLISH = "publish"  # one's own edits are published at once, without review
    VIEW_REVISION = "view_revision"  # read a revision not approved yet (or rejected)
    REVIEW = "review"  # approve or reject proposals; the review queue
    CONFIRM_FRESH = "confirm_fresh"  # "toujours à jour", review interval of a sheet
    UPDATE_AVAILABILITY = "update_availability"  # places, waiting list... (no review cycle)
    HOST_VISITS = "host_visits"  # offer a sheet's visit slots, see their registrants
    MODERATE = "moderate"  # reports, hide/restore, archive, duplicates, hidden sheets, audit log
    MANAGE_USERS = "manage_users"  # block and trust accounts
    # Edit a structure, invite to it, accept or refuse requests to join (issue 24).
    MANAGE_STRUCTURE = "manage_structure"
    MANAGE_STAFF = "manage_staff"  # the same on accounts that hold staff capabilities
    ADMINISTER = "administer"  # roles, deletion and personal data of other accounts


_CONTRIBUTOR = frozenset({Capability.CONTRIBUTE})
_MODERATOR = _CONTRIBUTOR | {Capability.PUBLISH, Capability.VIEW_REVISION, Capability.REVIEW,
                             Capability.CONFIRM_FRESH, Capability.UPDATE_AVAILABILITY,
                             Capability.HOST_VISITS,
                             Capability.MODERATE,
                             Capability.MANAGE_USERS, Capability.MANAGE_STRUCTURE}

# One row per role. A new role ("editor": may review, not manage accounts) is one more row.
ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.CONTRIBUTOR: _CONTRIBUTOR,
    Role.MODERATOR: _MODERATOR,
    Role.ADMIN: frozenset(Capability),
}

ANONYMOUS: frozenset[Capability] = frozenset()
# Granted to contributors a moderator (or the approval counter) marked as trusted.
TRUSTED: frozenset[Capability] = frozenset({Capability.PUBLISH})
# Granted on one object to anyone when the object is public (an approved revision)...
PUBLIC_ON_OBJECT: frozenset[Capability] = frozenset({Capability.VIEW_REVISION})
# ...and to its owner (a revision's author, a sheet's contributors), when the row lacks them.
OWNER_ON_OBJECT: frozenset[Capability] = frozenset({Capability.VIEW_REVISION,
                                                    Capability.CONFIRM_FRESH,
                                                    Capability.UPDATE_AVAILABILITY,
                                                    Capability.HOST_VISITS})
# ...and to the active members of the verified structure that carries it (a sheet's
# `structure_id`, issue 24): they publish their own changes to their structure's sheets, and
# host its visits with its contributors (the sheet's team, issue 22).
MEMBER_ON_OBJECT: frozenset[Capability] = frozenset({Capability.PUBLISH,
                                                     Capability.HOST_VISITS})
# ...and to the active members of the structure that carries it, verified or not: the freshness
# letters ask the whole team, and their one-click "Confirmer" and availability links act with
# the person's rights (issues 23 and 24: availability goes to the team).
TEAM_ON_OBJECT: frozenset[Capability] = frozenset({Capability.CONFIRM_FRESH,
                                                   Capability.UPDATE_AVAILABILITY})
# ...and to a structure's active administrators, on that structure (issue 24).
ADMIN_ON_OBJECT: frozenset[Capability] = frozenset({Capability.MANAGE_STRUCTURE})
# Capabilities that make an account "staff": acting on such an account needs more.
STAFF: frozenset[Capability] = frozenset({Capability.REVIEW, Capability.MODERATE,
                                          Capability.MANAGE_USERS, Capability.MANAGE_STAFF})
STRONGER_ON_STAFF: dict[Capability, Capability] = {
    Capability.MANAGE_USERS: Capability.MANAGE_STAFF}

# What a refusal says, in French.
DENIED: dict[Capability, str] = {
    Capability.CONTRIBUTE: "votre compte ne peut pas modifier les fiches",
    Capability.PUBLISH: "réservé aux contributeurs de confiance et aux modérateurs",
    Capability.VIEW_REVISION: "cette révision n'est pas visible",
    Capability.REVIEW: "réservé aux modérateurs",
    Capability.CONFIRM_FRESH: "réservé aux contributeurs de la fiche et aux modérateurs",
    Capability.UPDATE_AVAILABILITY: "réservé à l'équipe de la fiche et aux modérateurs",
    Capability.HOST_VISITS: "réservé aux contributeurs de la fiche, aux membres de sa "
                            "structure et aux modérateurs",
    Capability.MODERATE: "réservé aux modérateurs",
    Capability.MANAGE_USERS: "réservé aux modérateurs",
    Capability.MANAGE_STAFF: "seul un administrateur peut agir sur un modérateur",
    Capability.MANAGE_STRUCTURE: "réservé aux administrateurs de la structure et aux modérateurs",
    Capability.ADMINISTER: "réservé aux administrateurs",
}


@runtime_checkable
class Owned(Protocol):
    """An object some capabilities are granted on to its owner (see OWNER_ON_OBJECT)."""

    def is_owned_by(self, user: User) -> bool: ...


# How membership of a verified structure is read: kb.structures registers it at start-up (this
# layer cannot import it). None: no member rule (structures not loaded).
_member_rule: Callable[[User, int], bool] | None = None


def register_member_rule(rule: Callable[[User, int], bool] | None) -> None:
    global _member_rule
    _member_rule = rule


# How "active member of this structure, verified or not" is read (kb.structures registers it).
_team_rule: Callable[[User, int], bool] | None = None


def register_team_rule(rule: Callable[[User, int], bool] | None) -> None:
    global _team_rule
    _team_rule = rule


def _is_in_carriers_team(user: Any, obj: Any) -> bool:
    structure_id = getattr(obj, "structure_id", None)
    return (_team_rule is not None and isinstance(structure_id, int) and _is_user(user)
            and not user.blocked and user.deleted_at is None and _team_rule(user, structure_id))


# How "administers this structure" is read (kb.structures registers it too): (user, object).
_admin_rule: Callable[[User, Any], bool] | None = None


def register_admin_rule(rule: Callable[[User, Any], bool] | None) -> None:
    global _admin_rule
    _admin_rule = rule


def _administers(user: Any, obj: Any) -> bool:
    # Blocked or deleted accounts administer nothing, as they do nothing else.
    return (_admin_rule is not None and _is_user(user) and not user.blocked
            and user.deleted_at is None and _admin_rule(user, obj))


def _is_member_of_carrier(user: Any, obj: Any) -> bool:
    structure_id = getattr(obj, "structure_id", None)
    # The account-state rules of `capabilities` hold here too: blocked or unconfirmed, never.
    return (_member_rule is not None and isinstance(structure_id, int) and _is_user(user)
            and not user.blocked and user.is_confirmed and _member_rule(user, structure_id))


def _is_user(user: Any) -> bool:
    return isinstance(user, User) and bool(getattr(user, "is_authenticated", False))


def role_capabilities(user: Any) -> frozenset[Capability]:
    """What the account's role grants, whatever its state (for labels and staff checks)."""
    return ROLE_CAPABILITIES.get(user.role, ANONYMOUS) if _is_user(user) else ANONYMOUS


def capabilities(user: Any) -> frozenset[Capability]:
    """Everything `user` (a User, Flask-Login's anonymous user, or None) may do anywhere."""
    if not _is_user(user) or user.blocked:
        return ANONYMOUS  # a blocked account reads like an anonymous visitor
    granted = role_capabilities(user)
    if user.trusted:
        granted |= TRUSTED
    # Account-state rules go here, one line each.
    if not user.is_confirmed:
        granted -= {Capability.PUBLISH}  # an unconfirmed address's edits always wait (issue 10)
    return granted


def can(user: Any, capability: Capability | str, obj: Any = None) -> bool:
    """Whether `user` may use `capability`, on `obj` when given. Strings are accepted (templates)
    and checked: a misspelt capability is an error, never a silent "no"."""
    capability = Capability(capability)
    granted = capabilities(user)
    if capability in granted:
        stronger = STRONGER_ON_STAFF.get(capability)
        if stronger is not None and isinstance(obj, User) and role_capabilities(obj) & STAFF:
            return stronger in granted
        return True
    if obj is None:
        return False
    if capability in PUBLIC_ON_OBJECT and bool(getattr(obj, "is_public", False)):
        return True
    if capability in MEMBER_ON_OBJECT and _is_member_of_carrier(user, obj):
        return True
    if capability in ADMIN_ON_OBJECT and _administers(user, obj):
        return True
    if capability in TEAM_ON_OBJECT and _is_in_carriers_team(user, obj):
        return True
    return (capability in OWNER_ON_OBJECT and _is_user(user) and not user.blocked
            and isinstance(obj, Owned) and obj.is_owned_by(user))


def check(user: Any, capability: Capability | str, obj: Any = None) -> None:
    """`can` or PermissionDenied (with its French reason)."""
    if not can(user, capability, obj):
        capability = Capability(capability)
        if capability in STRONGER_ON_STAFF and capability in capabilities(user):
            capability = STRONGER_ON_STAFF[capability]
        raise PermissionDenied(DENIED[capability])


def require(capability: Capability) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator: anonymous callers are sent to the login page (401 on the API), others
    without the capability get 403."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_actor()
            if user is None:
                return unauthenticated()
            check(user, capability)
            return view(*args, **kwargs)

        return wrapper

    return decorator

