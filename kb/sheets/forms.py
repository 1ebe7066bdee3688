"""The sheet form, built from the field declaration."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms import Field as FormField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, ValidationError

from kb.sheets.fields import FIELDS, FIELDS_BY_NAME, Field, Kind
from kb.sheets.submissions import new_token, parse_token
from kb.territories.forms import department_choices, region_choices
from kb.territories.forms import for_display as place_for_display

COUNTED_UP_TO = 2_000  # longer limits are not worth a counter (nobody writes 20,000 characters)


class MaxChars:
    """A limit said and counted: the form shows it ("37 / 200 caractères", static/js), and a
    longer text is refused with its count, never cut. No `maxlength` attribute: the browser
    would cut a pasted text without a word."""

    def __init__(self, limit: int):
        self.limit = limit

    def __call__(self, form: Any, field: FormField) -> None:
        # Counted like the browser counts (one character per line break) and like the
        # declaration validates (surrounding spaces dropped).
        length = len(str(field.data or "").replace("\r\n", "\n").strip())
        if length > self.limit:
            raise ValidationError(f"{length} caractères, pour {self.limit} au plus : "
                                  f"retirez-en {length - self.limit}.")


def limited(limit: int) -> dict[str, Any]:
    """The field arguments of a counted limit."""
    return {"validators": [MaxChars(limit)], "render_kw": {"data-max": limit}}


def _form_field(f: Field) -> FormField:
    kwargs: dict[str, Any] = {"description": f.hint}
    if f.kind is Kind.CHOICE:
        # The declaration validates the value (with a French message); the select only offers it.
        choices = [SelectChoice("", "— Choisir —")] + [SelectChoice(v, label) for v, label in f.choices]
        return SelectField(f.label, choices=choices, validate_choice=False, **kwargs)
    if f.kind is Kind.MULTI and f.choices:
        # Checkboxes, grouped by family in the template (templates/sheets/_multi_field.html).
        return SelectMultipleField(f.label, choices=[SelectChoice(v, label) for v, label in f.choices],
                                   validate_choice=False,
                                   **kwargs)
    if f.is_list:  # the limit is per item: the declaration checks it
        return TextAreaField(f.label, **kwargs)
    if f.kind is Kind.LONG:
        render_kw = {"data-preview": "markdown"}  # the Markdown preview (static/js/sheet-form.js)
        if f.max_length <= COUNTED_UP_TO:
            return TextAreaField(f.label, validators=[MaxChars(f.max_length)],
                                 render_kw={**render_kw, "data-max": f.max_length}, **kwargs)
        return TextAreaField(f.label, render_kw=render_kw, **kwargs)
    return StringField(f.label, **limited(f.max_length), **kwargs)


class SheetForm(FlaskForm):
    base_revision = HiddenField()
    # One token per form shown: sending it twice saves once (kb/sheets/submissions.py).
    submission = HiddenField(default=new_token)
    comment = StringField("Résumé de la modification", **limited(300),
                          description="Facultatif : ce que vous avez changé et pourquoi.")

    def sheet_data(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name).data or "" for f in FIELDS}

    def token(self) -> str | None:
        return parse_token(self.submission.data)

    def sent_data(self) -> dict[str, Any]:
        """What makes two sends of this form the same send."""
        return {**self.sheet_data(), "_base": self.base_revision.data or "",
                "_comment": self.comment.data or ""}

    def fill(self, data: dict[str, Any]) -> None:
        data = place_for_display(data)  # codes as the selects hold them, the EPCI by name
        for f in FIELDS:
            value = data.get(f.name, f.empty())
            form_field = getattr(self, f.name)
            if isinstance(form_field, SelectMultipleField):
                form_field.data = list(value or [])
            else:
                form_field.data = "\n".join(value) if f.is_list else value


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
    public_reason = BooleanField("Motif visible publiquement (historique de la fiche)")
