"""One sheet lifecycle: every change of `Sheet.state` goes through `set_state`, which checks the
transition table and the actor's capability and marks the sheet changed (search index, listings,
duplicates lookup refresh after the commit). Callers write their own audit entry."""

from __future__ import annotations

from dataclasses import dataclass

from kb.auth.models import User
from kb.auth.permissions import Capability, check
from kb.errors import Conflict, Invalid
from kb.sheets.models import Sheet, SheetState
from kb.timeutil import utcnow
from kb.transaction import mark_changed


@dataclass(frozen=True)
class Transition:
    capability: Capability
    reason_required: bool = False  # from a person; the system always gives its reason


A, H, R, M = SheetState.ACTIVE, SheetState.HIDDEN, SheetState.ARCHIVED, SheetState.MERGED
TRANSITIONS: dict[tuple[SheetState, SheetState], Transition] = {
    (A, H): Transition(Capability.MODERATE, reason_required=True),  # hide (or spam reports)
    (H, A): Transition(Capability.MODERATE),  # restore
    (A, R): Transition(Capability.MODERATE),  # archive
    (R, A): Transition(Capability.MODERATE),  # unarchive
    (A, M): Transition(Capability.MODERATE),  # merged into a duplicate
    (H, M): Transition(Capability.MODERATE),
    (R, M): Transition(Capability.MODERATE),
}

# Why a transition is refused, by target state.
REFUSED: dict[SheetState, str] = {
    H: "seule une fiche active peut être masquée",
    R: "seule une fiche active peut être archivée",
    A: "cette fiche ne peut pas être remise en ligne depuis son état actuel",
    M: "cette fiche a déjà été fusionnée",
}


def can_move(sheet: Sheet, to: SheetState) -> bool:
    return (SheetState(sheet.state), to) in TRANSITIONS


def set_state(sheet: Sheet, to: SheetState, actor: User | None, reason: str = "") -> None:
    """Move `sheet` to state `to`. `actor` None is the system (automatic hiding after spam
    reports). Raises Conflict (not from this state), PermissionDenied, Invalid (no reason)."""
    before = SheetState(sheet.state)
    transition = TRANSITIONS.get((before, to))
    if transition is None:
        raise Conflict(REFUSED[to])
    if actor is not None:
        check(actor, transition.capability)
        if transition.reason_required and not reason.strip():
            raise Invalid("un motif est nécessaire")
    sheet.state = to.value
    if to is SheetState.ARCHIVED:
        sheet.archived_at = utcnow()
    elif before is SheetState.ARCHIVED:
        sheet.archived_at = None
    mark_changed([sheet])
