from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

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
