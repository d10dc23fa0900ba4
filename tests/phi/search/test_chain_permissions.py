"""A chained search reads the target type's data: it needs search on that type and sees only
what the caller may see of it (compartment, Consent, category) — issue #13, finding 2."""

from __future__ import annotations

from typing import Any

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records, consent
from tests.phi.search.support import CATEGORY, LOINC, MRN, ids, observation, patient, search


def refusal(resource_type: str) -> dict[str, Any]:
    """The OperationOutcome of a search the token does not allow on ``resource_type``."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "forbidden",
                "diagnostics": f"the access token does not allow searching {resource_type} "
                f"(needs user/{resource_type}.s or patient/{resource_type}.s)",
            }
        ],
    }


async def _target(phi: PhiHarness) -> tuple[str, str]:
    """Patient B (with MRN, phone, postal code, birth date) and one Observation of B."""
    b = await phi.create(
        patient(
            "Secretname",
            mrn="SSN-123-45-6789",
            phone="555-0100",
            postal="90210",
            birth="1961-07-04",
        )
    )
    obs = await phi.create(observation(b["id"]))
    return b["id"], obs["id"]


async def test_a_chain_into_patient_needs_patient_search(phi: PhiHarness) -> None:
    b, obs = await _target(phi)
    scope = "user/Observation.rs"
    assert (await phi.http.get(f"/fhir/Patient/{b}", headers=phi.headers(scope))).status_code == 403
    for query in (
        f"subject:Patient.identifier={MRN}|SSN-123-45-6789",
        "patient.identifier=SSN-123-45-6789",
        "subject:Patient.name=S&_summary=count",
        "subject:Patient.name=Sec&_total=accurate",
        "patient.phone=555-0100",
        "patient.birthdate=1961-07-04",
        "patient.address-postalcode=90210",
        "patient.name:missing=false",
        "patient._id=" + b,
    ):
        response = await phi.http.get(f"/fhir/Observation?{query}", headers=phi.headers(scope))
        assert response.status_code == 403, query
        assert response.json() == refusal("Patient"), query
    posted = await phi.http.post(
        "/fhir/Observation/_search",
        content="patient.name=Secret",
        headers={
            **phi.headers(scope),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert posted.status_code == 403
    assert posted.json() == refusal("Patient")
    last = (await audit_records(phi.app, action="fhir.search"))[-1]
    assert (last.outcome, last.resource_type) == ("failure", "Observation")

    # Chains still work for a caller who may search Patient.
    allowed = "user/Observation.rs user/Patient.rs"
    found = await search(
        phi, f"Observation?subject:Patient.identifier={MRN}|SSN-123-45-6789", allowed
    )
    assert ids(found) == [obs]
    assert ids(await search(phi, "Observation?patient.name=Secret", allowed)) == [obs]
    # Reverse chaining and sorting on a chain stay refused.
    for query in (
        "Patient?_has:Observation:patient:code=8867-4",
        "Observation?_sort=patient.birthdate",
    ):
        response = await phi.http.get(f"/fhir/{query}", headers=phi.headers(allowed))
        assert response.status_code == 400, query
        assert response.json()["issue"][0]["code"] == "not-supported", query


async def test_a_chain_sees_only_the_targets_the_caller_may_see(phi: PhiHarness) -> None:
    mine = (await phi.create(patient("Mine")))["id"]
    theirs = (await phi.create(patient("Theirs", mrn="T-1")))["id"]
    # An Observation of mine whose performer is the other patient (outside my compartment).
    linked = await phi.create(
        {**observation(mine), "performer": [{"reference": f"Patient/{theirs}"}]}
    )
    token, claims = "patient/*.rs", {"patient": mine}
    for query in (
        "Observation?performer:Patient.name=Theirs",
        "Observation?performer:Patient.identifier=T-1",
        "Observation?performer:Patient.name:missing=false",
    ):
        assert ids(await search(phi, query, token, **claims)) == [], query
        counted = await search(phi, f"{query}&_summary=count", token, **claims)
        assert counted["total"] == 0, query
    # the same chains through a system token find it: the data is there
    assert ids(await search(phi, "Observation?performer:Patient.name=Theirs")) == [linked["id"]]


async def test_a_chain_respects_consent_and_category_limits(phi: PhiHarness) -> None:
    denied = (await phi.create(patient("Private", mrn="P-1")))["id"]
    await phi.create(consent(denied))
    open_ = (await phi.create(patient("Open")))["id"]
    linked = await phi.create(
        {**observation(open_), "performer": [{"reference": f"Patient/{denied}"}]}
    )
    clinician: dict[str, Any] = {"roles": ["clinician"]}
    query = "Observation?performer:Patient.identifier=P-1"
    assert ids(await search(phi, query, "user/*.rs", **clinician)) == []
    assert ids(await search(phi, query, "system/*.rs")) == [linked["id"]]

    lab = await phi.create(observation(open_, "2345-7", category="laboratory"))
    vitals = await phi.create(
        {
            **observation(open_),
            "hasMember": [{"reference": f"Observation/{lab['id']}"}],
        }
    )
    limited = f"user/Observation.rs?category={CATEGORY}|vital-signs"
    chained = f"Observation?has-member.code={LOINC}|2345-7"
    assert ids(await search(phi, chained, limited)) == []
    assert (await search(phi, f"{chained}&_summary=count", limited))["total"] == 0
    assert ids(await search(phi, chained)) == [vitals["id"]]


async def test_counts_chains_and_matches_answer_only_what_one_scope_grants(
    phi: PhiHarness,
) -> None:
    # A system scope limited to a category the row lacks, beside a user scope that the
    # patient's Consent shuts out: neither grants C's data, so no query may count or match it.
    private = (await phi.create(patient("Cole", mrn="C-1")))["id"]
    await phi.create(consent(private))
    lab = (await phi.create(observation(private, "2345-7", category="laboratory")))["id"]
    other = (await phi.create(patient("Open")))["id"]
    await phi.create({**observation(other), "performer": [{"reference": f"Patient/{private}"}]})
    vitals = f"?category={CATEGORY}|vital-signs"
    scope = f"system/Patient.rs{vitals} system/Observation.rs{vitals} user/*.crs"
    clinician: dict[str, Any] = {"roles": ["clinician"]}
    headers = phi.headers(scope, **clinician)
    for path in (f"Patient/{private}", f"Observation/{lab}"):
        assert (await phi.http.get(f"/fhir/{path}", headers=headers)).status_code == 403, path

    for query in (
        "Patient?name=Cole&_summary=count",
        "Patient?identifier=C-1&_total=accurate",
        f"Observation?patient={private}&_summary=count",
        "Observation?performer:Patient.name=Cole&_total=accurate",
        "Observation?patient.identifier=C-1&_summary=count",
    ):
        body = await search(phi, query, scope, **clinician)
        assert body["total"] == 0, query
        assert ids(body) == [], query
    probe = {**phi.headers(scope, **clinician), "If-None-Exist": f"identifier={MRN}|C-1"}
    created = await phi.http.post("/fhir/Patient", json=patient("Cole", mrn="C-1"), headers=probe)
    assert created.status_code == 201
    assert created.json()["id"] != private
