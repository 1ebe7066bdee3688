"""The sheet form, built from the field declaration."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms import Field as FormField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from kb.sheets.fields import FIELDS, Field, Kind


def _form_field(f: Field) -> FormField:
    kwargs: dict[str, Any] = {"description": f.hint}
    if f.kind is Kind.CHOICE:
        # The declaration validates the value (with a French message); the select only offers it.
        choices = [SelectChoice("", "— Choisir —")] + [SelectChoice(v, label) for v, label in f.choices]
        return SelectField(f.label, choices=choices, validate_choice=False, **kwargs)
    if f.kind in (Kind.LONG, Kind.LIST):
        return TextAreaField(f.label, **kwargs)
    return StringField(f.label, validators=[Length(max=f.max_length)], **kwargs)


class SheetForm(FlaskForm):
    base_revision = HiddenField()
    comment = StringField("Résumé de la modification", validators=[Length(max=300)],
                          description="Facultatif : ce que vous avez changé et pourquoi.")

    def sheet_data(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name).data or "" for f in FIELDS}

    def fill(self, data: dict[str, Any]) -> None:
        for f in FIELDS:
            value = data.get(f.name, f.empty())
            getattr(self, f.name).data = "\n".join(value) if f.kind is Kind.LIST else value


for _f in FIELDS:
    setattr(SheetForm, _f.name, _form_field(_f))


class ReviewForm(FlaskForm):
    reason = TextAreaField("Motif", validators=[Length(max=2000)])
    public_reason = BooleanField("Motif visible publiquement (historique de la fiche)")
