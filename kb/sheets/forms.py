"""The sheet form, built from the field declaration."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field as FormField
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from kb.sheets.fields import FIELDS, FIELDS_BY_NAME, Field, Kind
from kb.territories.forms import department_choices, region_choices
from kb.territories.forms import for_display as place_for_display


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
        data = place_for_display(data)  # codes as the selects hold them, the EPCI by name
        for f in FIELDS:
            value = data.get(f.name, f.empty())
            getattr(self, f.name).data = "\n".join(value) if f.kind is Kind.LIST else value


for _f in FIELDS:
    setattr(SheetForm, _f.name, _form_field(_f))

# The place (kb/territories): the commune's code travels hidden beside its name (set by the
# autocomplete, or by the choice offered when a name is ambiguous); département and région
# are lists of the official ones.
SheetForm.commune_code = HiddenField()
SheetForm.department = SelectField(
    FIELDS_BY_NAME["department"].label, choices=department_choices, validate_choice=False,
    description=FIELDS_BY_NAME["department"].hint)
SheetForm.region = SelectField(
    FIELDS_BY_NAME["region"].label, choices=region_choices, validate_choice=False,
    description=FIELDS_BY_NAME["region"].hint)


class ReviewForm(FlaskForm):
    reason = TextAreaField("Motif", validators=[Length(max=2000)])
