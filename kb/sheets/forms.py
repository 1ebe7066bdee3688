"""The sheet form, built from the field declaration."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms import Field as FormField
from wtforms import FormField as RowField
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


BLANK_RECORDS = 1  # empty rows offered after the filled ones (without JavaScript, one more each save)


def _part_field(part: Field) -> FormField:
    """One input of a record's row; the declaration checks the value (French errors)."""
    kwargs: dict[str, Any] = {"description": part.hint}
    if part.kind is Kind.CHOICE:
        choices = [SelectChoice("", "—")] + [SelectChoice(v, label) for v, label in part.choices]
        return SelectField(part.label, choices=choices, validate_choice=False, **kwargs)
    render_kw: dict[str, Any] = {}
    if part.kind is Kind.NUMBER:
        render_kw = {"inputmode": "decimal"}
    elif part.kind is Kind.DATE:
        render_kw = {"type": "date"}
    elif part.kind is Kind.URL:
        render_kw = {"type": "url"}
    return StringField(part.label, render_kw=render_kw, **kwargs)


def _record_form(f: Field) -> type[Form]:
    """The row of one record (an indicator): a plain Form, the sheet form carries the CSRF."""
    return type(f"{f.name.title()}Row", (Form,), {p.name: _part_field(p) for p in f.parts})


def _form_field(f: Field) -> FormField:
    kwargs: dict[str, Any] = {"description": f.hint}
    if f.kind is Kind.RECORDS:
        return FieldList(RowField(_record_form(f)), f.label, min_entries=BLANK_RECORDS,
                         max_entries=40, **kwargs)
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
        return {f.name: getattr(self, f.name).data or f.empty() for f in FIELDS}

    def add_record(self, name: str, item: dict[str, Any]) -> None:
        """A suggested record, added to the form (not saved) when the author asks for it:
        into the first blank row, or a new one."""
        rows: FieldList = getattr(self, name)
        for row in rows:
            if not any(str(v or "").strip() for v in row.data.values()):
                row.process(None, data=item)
                break
        else:
            rows.append_entry(item)
        rows.append_entry()

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
            if isinstance(form_field, FieldList):  # the filled records, then a blank row
                while form_field.entries:
                    form_field.pop_entry()
                for item in [*(value or []), *([{}] * BLANK_RECORDS)]:
                    form_field.append_entry({k: "" if v is None else v for k, v in item.items()})
            elif isinstance(form_field, SelectMultipleField):
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
