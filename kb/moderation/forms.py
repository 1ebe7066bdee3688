from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from kb.moderation.models import REPORT_REASONS


class ReportForm(FlaskForm):
    reason = RadioField("Quel est le problème ?",
                        choices=[SelectChoice(v, label) for v, label in REPORT_REASONS],
                        validators=[DataRequired("Choisissez un motif.")])
    comment = TextAreaField("Précisions", validators=[Length(max=2000)],
                            description="Facultatif, sauf pour « Autre » : ce qui a changé, "
                                        "l'adresse du doublon…")


class ReasonForm(FlaskForm):
    """Any moderation action: CSRF plus an optional or required reason."""

    reason = TextAreaField("Motif", validators=[Length(max=2000)])
    # Reasons are internal by default: only a ticked box shows one in the public history.
    public_reason = BooleanField("Motif visible publiquement (historique de la fiche)")


class AccountActionForm(ReasonForm):
    """The accounts page: block (and undo the account's published changes since a day), unblock,
    trust."""

    since = DateField("Annuler aussi ses modifications publiées depuis le", validators=[
        Optional()], format="%Y-%m-%d")

    def since_utc(self) -> datetime | None:
        """The day typed, from midnight in France, as the naive UTC the database stores."""
        if self.since.data is None:
            return None
        start = datetime.combine(self.since.data, time(), tzinfo=ZoneInfo("Europe/Paris"))
        return start.astimezone(UTC).replace(tzinfo=None)
