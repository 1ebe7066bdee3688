"""Notification settings chosen in "Mon compte", read by every domain that mails people.

Mails about the account itself (confirmation, password, address change) are never optional;
everything else is: decisions on one's contributions, and "La lettre des fiches" (kb/letters),
the one letter per period that gathers sheets to check, follows, questions waiting for an
answer and, for moderators, their pending work. Its period and sections are chosen here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app

from kb.auth.models import SYSTEM_EMAIL, User

# Choices once offered for the freshness digest, in days; superseded by the letter's period.
REMINDER_PERIODS = (7, 14, 30, 60, 90, 180)


def _mailable(user: User) -> bool:
    return user.is_active and user.email != SYSTEM_EMAIL


def wants_contribution_mail(user: User) -> bool:
    """Decisions on their proposals, reports about their sheets."""
    return _mailable(user) and bool(user.notify_contributions)


def reminder_period(user: User) -> timedelta | None:
    """The former freshness digest's period (kb.freshness.operations.send_reminders, no longer
    called: its content comes through the letter)."""
    if not _mailable(user):
        return None
    days = user.reminder_period_days
    if days is None:
        days = int(current_app.config["KB_REMINDER_PERIOD_DAYS"])
    return timedelta(days=days) if days > 0 else None


# --- La lettre des fiches ---------------------------------------------------------------------

# The letter's sections, in the order they appear in it: key (used in unsubscribe links and the
# letter_sections_off column) -> French title.
LETTER_SECTIONS = {
    "verifier": "À vérifier",
    "suivis": "Vos suivis",
    "questions": "Questions en attente",
    "moderation": "Pour la modération",
    "visites": "Vos visites",  # hosted slots filling up: 50, 80, 100 % (kb.visits)
}
LETTER_PERIODS = {"month": "chaque mois (le premier mercredi)", "week": "chaque semaine"}
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def letter_sections(user: User) -> list[str]:
    """The sections this person receives (none: no letter at all). Moderators' section only for
    confirmed accounts that may review."""
    if not _mailable(user):
        return []
    off = set(filter(None, (user.letter_sections_off or "").split(",")))
    keys = [key for key in LETTER_SECTIONS if key not in off]
    if "moderation" in keys and not wants_moderation_section(user):
        keys.remove("moderation")
    return keys


def wants_moderation_section(user: Any) -> bool:
    from kb.auth.permissions import Capability, can

    return can(user, Capability.REVIEW) and bool(user.is_confirmed)


def set_letter_section(user: User, key: str, wanted: bool) -> None:
    if key not in LETTER_SECTIONS:
        raise ValueError(f"section inconnue : {key}")
    off = set(filter(None, (user.letter_sections_off or "").split(","))) - {key}
    if not wanted:
        off.add(key)
    user.letter_sections_off = ",".join(k for k in LETTER_SECTIONS if k in off)


def set_letter_period(user: User, period: str, weekday: int | None = None) -> None:
    """Monthly (first Wednesday) or weekly on `weekday` (0: Monday … 6: Sunday)."""
    if period not in LETTER_PERIODS:
        raise ValueError(f"fréquence inconnue : {period}")
    user.letter_period = period
    if period == "week":
        if weekday is None or not 0 <= weekday <= 6:
            raise ValueError("choisissez le jour de la semaine")
        user.letter_weekday = weekday


def set_commune(user: User, code: str) -> bool:
    """The reader's commune on the account (an INSEE code already resolved, "" to forget it);
    whether it changed."""
    if (user.commune_code or "") == code:
        return False
    user.commune_code = code
    return True


def opt_out_of_everything(user: User) -> None:
    user.notify_contributions = False
    user.letter_sections_off = ",".join(LETTER_SECTIONS)
