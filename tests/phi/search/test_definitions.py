"""The search parameter registry other parts (the CapabilityStatement) read."""

from __future__ import annotations

from medmesh.phi.fhir.types import SUPPORTED_TYPES
from medmesh.phi.search.definitions import SEARCH_PARAMETERS


def test_every_supported_type_has_documented_parameters() -> None:
    assert set(SEARCH_PARAMETERS) == set(SUPPORTED_TYPES)
    for resource_type, params in SEARCH_PARAMETERS.items():
        assert {"_id", "_lastUpdated"} <= set(params), resource_type
        for name, definition in params.items():
            assert definition.name == name
            assert definition.type in {"string", "token", "date", "reference"}
            assert definition.documentation


def test_the_parameters_the_issue_names() -> None:
    patient = SEARCH_PARAMETERS["Patient"]
    for name in (
        "name",
        "family",
        "given",
        "identifier",
        "birthdate",
        "gender",
        "phone",
        "email",
        "address-postalcode",
    ):
        assert name in patient
    assert patient["identifier"].blind
    assert patient["name"].blind
    assert not patient["gender"].blind
    assert SEARCH_PARAMETERS["Observation"]["date"].type == "date"
    assert "date" not in SEARCH_PARAMETERS["MedicationRequest"]
    assert "authoredon" in SEARCH_PARAMETERS["MedicationRequest"]
    assert "onset-date" in SEARCH_PARAMETERS["Condition"]
    for clinical in (
        "Observation",
        "Condition",
        "Procedure",
        "Encounter",
        "DiagnosticReport",
        "CarePlan",
    ):
        assert {"patient", "subject"} <= set(SEARCH_PARAMETERS[clinical])
