import pytest

from kb.sheets.fields import FIELD_NAMES, FIELDS_BY_NAME, ValidationError, validate

from .conftest import sheet_data


def test_declaration_has_the_issue_fields_in_order():
    assert FIELD_NAMES == (
        "title", "summary", "context", "stakes", "convictions", "method", "results", "contacts",
        "actor_name", "sheet_author", "actor_type", "scale", "city", "commune_code", "epci",
        "department", "region", "tags", "partners", "website", "further_reading",
            "thematiques", "publics", "modes_mobilisation", "mobilisable_par", "lien_mobilisation",
            "mobilisation_precisions", "conditions_acces", "frais", "zone_eligibilite",
            # issue 26: measured results and lessons learned
            "indicators", "strengths", "improvements", "spreading")
    assert FIELDS_BY_NAME["method"].label == "Méthodologie mise en place"
    assert FIELDS_BY_NAME["scale"].choice_values == (
        "quartier", "commune", "intercommunalite", "departement", "region", "national")


def test_valid_data_is_normalised():
    cleaned = validate(sheet_data(title="  Accueil   en mairie ", tags="accueil, Accueil,numérique"))
    assert cleaned["title"] == "Accueil en mairie"
    assert cleaned["tags"] == ["accueil", "numérique"]
    assert set(cleaned) == set(FIELD_NAMES)


@pytest.mark.parametrize("field, value, message", [
    ("title", "", "obligatoire"),
    ("scale", "planète", "valeur inconnue"),
    ("website", "javascript:alert(1)", "http"),
    ("website", "ftp://example.org", "http"),
    ("title", "x" * 201, "200 caractères"),
    ("tags", 42, "liste"),
    ("summary", ["not", "text"], "texte"),
])
def test_bad_values_are_refused_with_a_message_per_field(field, value, message):
    with pytest.raises(ValidationError) as error:
        validate(sheet_data(**{field: value}))
    assert message in error.value.errors[field]


def test_unknown_field_is_an_error_not_silently_dropped():
    with pytest.raises(ValidationError) as error:
        validate({**sheet_data(), "titel": "typo"})
    assert error.value.errors == {"titel": "champ inconnu"}


def test_partial_validation_checks_only_given_fields():
    assert validate({"city": "Quimper"}, partial=True) == {"city": "Quimper"}
