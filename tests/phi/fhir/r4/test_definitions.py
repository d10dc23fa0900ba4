"""The vendored R4 definitions: R4's types, its value sets and its compartments."""

from __future__ import annotations

from medmesh.phi.fhir.r4 import definitions


def test_r4_has_146_resource_types_and_no_medplum_ones() -> None:
    loaded = definitions()
    assert len(loaded.resource_types) == 146
    assert {"Specimen", "Endpoint", "FamilyMemberHistory", "Composition"} <= loaded.resource_types
    assert not {"Project", "User", "Bot", "AccessPolicy"} & loaded.resource_types
    assert "resource" not in loaded.schema["definitions"]["Reference"]["properties"]
    assert "project" not in loaded.schema["definitions"]["Meta"]["properties"]


def test_required_bindings_carry_their_value_sets() -> None:
    observation = definitions().types["Observation"]
    assert observation["status"].codes is not None
    assert "final" in observation["status"].codes
    assert observation["subject"].targets == frozenset({"Patient", "Group", "Device", "Location"})
    assert observation["focus"].targets is None  # any resource
    comparator = definitions().types["Quantity"]["comparator"]
    assert comparator.codes == frozenset({"<", "<=", ">=", ">"})


def test_the_five_compartments_of_r4() -> None:
    compartments = definitions().compartments["compartments"]
    assert set(compartments) == {"Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"}
    assert compartments["Patient"]["Observation"] == ["subject", "performer"]
    assert "Observation.subject" in definitions().compartments["expressions"]
