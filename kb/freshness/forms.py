from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from kb.freshness.readers import COMMENT_MAX


class ReaderCheckForm(FlaskForm):
    """ "Cette fiche vous semble-t-elle toujours juste ?" on the sheet page."""

    answer = RadioField("Cette fiche vous semble-t-elle toujours juste ?",
                        choices=[SelectChoice("oui", "Oui"), SelectChoice("non", "Non")],
                        validators=[DataRequired("Répondez « Oui » ou « Non ».")])
    comment = TextAreaField("Commentaire (facultatif)", validators=[Length(max=COMMENT_MAX)],
                            description="Ce qui a changé, si vous le savez.")
