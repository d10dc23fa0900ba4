"""Each kind of search parameter, as a FHIR client would use it."""

from __future__ import annotations

import pytest

from tests.phi.conftest import PhiHarness
from tests.phi.search.support import CATEGORY, LOINC, MRN, ids, observation, patient, search


async def test_name_is_a_case_and_accent_insensitive_starts_with(phi: PhiHarness) -> None:
    renee = await phi.create(patient("Renée", "Zoë"))
    rene = await phi.create(patient("Rennard", "Paul"))
    other = await phi.create(patient("Smith", "Renata"))

    assert set(ids(await search(phi, "Patient?name=Ren"))) == {renee["id"], rene["id"], other["id"]}
    assert ids(await search(phi, "Patient?family=RENEE")) == [renee["id"]]
    assert set(ids(await search(phi, "Patient?family=ren"))) == {renee["id"], rene["id"]}
    assert ids(await search(phi, "Patient?given=zoe")) == [renee["id"]]
    assert ids(await search(phi, "Patient?given=ren")) == [other["id"]]
    assert ids(await search(phi, "Patient?family=Renx")) == []
    # a comma is OR; repeating a parameter is AND
    assert set(ids(await search(phi, "Patient?family=smi,renn"))) == {other["id"], rene["id"]}
    assert ids(await search(phi, "Patient?family=ren&given=paul")) == [rene["id"]]


async def test_string_exact_and_missing_modifiers(phi: PhiHarness) -> None:
    renee = await phi.create(patient("Renée"))
    renee_long = await phi.create(patient("Reneeson"))
    nameless = await phi.create({"resourceType": "Patient", "gender": "male"})

    assert ids(await search(phi, "Patient?family:exact=renee")) == [renee["id"]]
    assert set(ids(await search(phi, "Patient?family=renee"))) == {renee["id"], renee_long["id"]}
    assert ids(await search(phi, "Patient?name:missing=true")) == [nameless["id"]]
    assert nameless["id"] not in ids(await search(phi, "Patient?name:missing=false"))


async def test_name_and_address_match_every_part_each_stored_once(phi: PhiHarness) -> None:
    quill = {
        **patient("Quill", "Peter"),
        "name": [{"family": "Quill", "given": ["Peter"], "prefix": ["Mr"], "text": "Star Lord"}],
        "address": [
            {
                "line": ["12 Nova Road"],
                "city": "Knowhere",
                "district": "Outer Rim",
                "state": "MA",
                "postalCode": "02139",
                "country": "Xandar",
            }
        ],
    }
    created = await phi.create(quill)
    await phi.create(patient("Rocket", "Raccoon", postal="90210"))

    for query in ("qui", "pet", "mr", "star", "quill"):
        assert ids(await search(phi, f"Patient?name={query}")) == [created["id"]], query
    assert ids(await search(phi, "Patient?name:exact=peter")) == [created["id"]]
    for query in ("12 nova", "knowh", "outer", "ma", "0213", "xand"):
        assert ids(await search(phi, f"Patient?address={query}")) == [created["id"]], query
    assert ids(await search(phi, "Patient?address-city=knowhere")) == [created["id"]]
    assert ids(await search(phi, "Patient?address-state=knowhere")) == []
    assert ids(await search(phi, "Patient?family=star")) == []
    assert ids(await search(phi, "Patient?given=quill")) == []

    # ``name`` and ``address`` keep only the parts no narrower parameter stores
    rows = phi.app.state.phi.index.rows("Patient", quill).strings
    by_param: dict[str, set[str]] = {}
    for param, token in rows:
        by_param.setdefault(param, set()).add(token)
    assert not by_param["name"] & (by_param["family"] | by_param["given"])
    narrower = ("address-city", "address-state", "address-postalcode", "address-country")
    assert not by_param["address"] & set().union(*(by_param[p] for p in narrower))
    parts = ["quill", "peter", "mr", "star lord", "12 nova road", "knowhere", "outer rim", "ma"]
    parts += ["02139", "xandar"]
    # each part once: a token of each of its prefixes and one of the whole
    assert len(rows) == sum(len(part) + 1 for part in parts)


async def test_identifier_system_and_value(phi: PhiHarness) -> None:
    a = await phi.create(patient("Alpha", mrn="MRN-1"))
    b = await phi.create(
        {**patient("Beta"), "identifier": [{"system": "http://other.example", "value": "MRN-1"}]}
    )
    c = await phi.create({**patient("Gamma"), "identifier": [{"value": "MRN-1"}]})

    assert ids(await search(phi, f"Patient?identifier={MRN}|MRN-1")) == [a["id"]]
    assert set(ids(await search(phi, "Patient?identifier=MRN-1"))) == {a["id"], b["id"], c["id"]}
    assert ids(await search(phi, "Patient?identifier=|MRN-1")) == [c["id"]]
    assert ids(await search(phi, f"Patient?identifier={MRN}|")) == [a["id"]]
    assert ids(await search(phi, f"Patient?identifier={MRN}|MRN-2")) == []


async def test_telecom_and_postal_code(phi: PhiHarness) -> None:
    a = await phi.create(
        patient("Alpha", phone="(555) 010-2030", email="Alpha@Example.org", postal="02139")
    )
    await phi.create(
        patient("Beta", phone="555-999-0000", email="beta@example.org", postal="90210")
    )

    assert ids(await search(phi, "Patient?phone=5550102030")) == [a["id"]]
    assert ids(await search(phi, "Patient?email=alpha@example.org")) == [a["id"]]
    assert ids(await search(phi, "Patient?address-postalcode=021")) == [a["id"]]
    assert ids(await search(phi, "Patient?address-postalcode=02139")) == [a["id"]]
    assert ids(await search(phi, "Patient?phone=alpha@example.org")) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("2000-05-10", {"may10"}),
        ("eq2000-05", {"may10", "may31"}),
        ("2000", {"may10", "may31", "jan"}),
        ("ne2000-05", {"jan", "y1999"}),
        ("gt2000-05", set()),
        ("ge2000-05", {"may10", "may31"}),
        ("lt2000-05", {"jan", "y1999"}),
        ("le2000-05-10", {"may10", "jan", "y1999"}),
        ("sa2000-01", {"may10", "may31"}),
        ("eb2000", {"y1999"}),
        ("gt1999-12-31", {"may10", "may31", "jan"}),
        ("ge2000-05-31T00:00:00Z", {"may31"}),
    ],
)
async def test_birthdate_prefixes_and_partial_dates(
    phi: PhiHarness, query: str, expected: set[str]
) -> None:
    born = {
        "may10": "2000-05-10",
        "may31": "2000-05-31",
        "jan": "2000-01-15",
        "y1999": "1999-12-31",
    }
    by_id = {}
    for label, day in born.items():
        created = await phi.create(patient(label.capitalize(), birth=day))
        by_id[created["id"]] = label
    found = {by_id[i] for i in ids(await search(phi, f"Patient?birthdate={query}"))}
    assert found == expected


async def test_invalid_date_is_400_without_the_value(phi: PhiHarness) -> None:
    response = await phi.http.get("/fhir/Patient?birthdate=ge1970-13-45", headers=phi.headers())
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "1970-13-45" not in response.text


async def test_an_offset_of_a_day_or_more_is_400(phi: PhiHarness) -> None:
    for url, message in (
        (
            "/fhir/Observation?date=2019-02-17T14:45:01%2B24:00",
            "a date parameter value is not a FHIR date",
        ),
        (
            "/fhir/Observation/_history?_since=2019-02-17T14:45:01%2B24:00",
            "_since must be a FHIR instant",
        ),
    ):
        response = await phi.http.get(url, headers=phi.headers())
        assert response.status_code == 400, url
        [issue] = response.json()["issue"]
        assert (issue["code"], issue["diagnostics"]) == ("value", message)


async def test_tokens_code_category_status_gender(phi: PhiHarness) -> None:
    p = await phi.create(patient("Alpha", gender="male"))
    await phi.create(patient("Beta", gender="female"))
    hr = await phi.create(observation(p["id"], "8867-4"))
    lab = await phi.create(
        {**observation(p["id"], "2339-0", category="laboratory"), "status": "amended"}
    )

    assert ids(await search(phi, "Patient?gender=male")) == [p["id"]]
    assert ids(await search(phi, f"Observation?code={LOINC}|8867-4")) == [hr["id"]]
    assert ids(await search(phi, "Observation?code=2339-0")) == [lab["id"]]
    assert ids(await search(phi, "Observation?code=http://snomed.info/sct|2339-0")) == []
    assert set(ids(await search(phi, "Observation?code=8867-4,2339-0"))) == {hr["id"], lab["id"]}
    assert ids(await search(phi, f"Observation?category={CATEGORY}|laboratory")) == [lab["id"]]
    assert ids(await search(phi, "Observation?status=final")) == [hr["id"]]
    assert ids(await search(phi, "Observation?status:not=final")) == [lab["id"]]


async def test_references_patient_subject_encounter(phi: PhiHarness) -> None:
    a = await phi.create(patient("Alpha"))
    b = await phi.create(patient("Beta"))
    enc = await phi.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{a['id']}"},
            "period": {"start": "2020-05-10T09:00:00Z", "end": "2020-05-10T11:00:00Z"},
        }
    )
    oa = await phi.create(observation(a["id"], encounter=enc["id"]))
    ob = await phi.create(observation(b["id"]))

    assert ids(await search(phi, f"Observation?patient={a['id']}")) == [oa["id"]]
    assert ids(await search(phi, f"Observation?patient=Patient/{b['id']}")) == [ob["id"]]
    assert ids(await search(phi, f"Observation?subject=Patient/{a['id']}")) == [oa["id"]]
    assert ids(await search(phi, f"Observation?subject:Patient={b['id']}")) == [ob["id"]]
    assert ids(await search(phi, f"Observation?encounter=Encounter/{enc['id']}")) == [oa["id"]]
    assert ids(await search(phi, "Observation?encounter:missing=true")) == [ob["id"]]
    assert ids(await search(phi, f"Encounter?patient={a['id']}&date=2020-05-10")) == [enc["id"]]
    assert ids(await search(phi, f"Encounter?patient={b['id']}")) == []


async def test_clinical_dates_follow_each_types_definition(phi: PhiHarness) -> None:
    p = await phi.create(patient("Alpha"))
    early = await phi.create(observation(p["id"], when="2019-03-01T08:00:00Z"))
    late = await phi.create(observation(p["id"], when="2021-07-01T08:00:00+02:00"))
    cond = await phi.create(
        {
            "resourceType": "Condition",
            "subject": {"reference": f"Patient/{p['id']}"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
            "onsetDateTime": "2018-02-03",
        }
    )
    med = await phi.create(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{p['id']}"},
            "authoredOn": "2020-06-01",
            "medicationCodeableConcept": {
                "coding": [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "316049"}
                ]
            },
        }
    )

    assert ids(await search(phi, "Observation?date=lt2020")) == [early["id"]]
    assert ids(await search(phi, "Observation?date=ge2021-07-01T06:00:00Z")) == [late["id"]]
    assert ids(await search(phi, "Condition?onset-date=2018-02")) == [cond["id"]]
    assert ids(await search(phi, "MedicationRequest?authoredon=2020")) == [med["id"]]
    assert ids(await search(phi, "MedicationRequest?code=316049")) == [med["id"]]
    response = await phi.http.get("/fhir/MedicationRequest?date=2020", headers=phi.headers())
    assert response.status_code == 400


async def test_id_and_last_updated(phi: PhiHarness) -> None:
    a = await phi.create(patient("Alpha"))
    b = await phi.create(patient("Beta"))
    assert set(ids(await search(phi, f"Patient?_id={a['id']},{b['id']}"))) == {a["id"], b["id"]}
    assert ids(await search(phi, f"Patient?_id={a['id']}")) == [a["id"]]
    since = a["meta"]["lastUpdated"]
    assert set(ids(await search(phi, f"Patient?_lastUpdated=ge{since}"))) == {a["id"], b["id"]}
    assert ids(await search(phi, "Patient?_lastUpdated=lt2000")) == []


async def test_chaining_one_level(phi: PhiHarness) -> None:
    a = await phi.create(patient("Alpha", mrn="A-1"))
    b = await phi.create(patient("Beta", mrn="B-2"))
    oa = await phi.create(observation(a["id"]))
    await phi.create(observation(b["id"]))

    assert ids(await search(phi, f"Observation?subject:Patient.identifier={MRN}|A-1")) == [oa["id"]]
    assert ids(await search(phi, "Observation?patient.identifier=A-1")) == [oa["id"]]
    assert ids(await search(phi, "Observation?patient.family=alp")) == [oa["id"]]
    assert ids(await search(phi, "Observation?patient.identifier=none")) == []
    response = await phi.http.get(
        "/fhir/Observation?patient.organization.name=x", headers=phi.headers()
    )
    assert response.status_code == 400


async def test_practitioner_and_organization(phi: PhiHarness) -> None:
    org = await phi.create(
        {
            "resourceType": "Organization",
            "name": "Springfield General",
            "identifier": [
                {"system": "https://github.com/synthetichealth/synthea", "value": "o-1"}
            ],
        }
    )
    doc = await phi.create(
        {
            "resourceType": "Practitioner",
            "name": [{"family": "Hibbert", "given": ["Julius"]}],
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "999"}],
        }
    )
    assert ids(await search(phi, "Organization?name=spring")) == [org["id"]]
    assert ids(
        await search(phi, "Organization?identifier=https://github.com/synthetichealth/synthea|o-1")
    ) == [org["id"]]
    assert ids(await search(phi, "Practitioner?name=hib")) == [doc["id"]]
    assert ids(await search(phi, "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|999")) == [
        doc["id"]
    ]


async def test_unknown_parameter_is_400_or_ignored_when_lenient(phi: PhiHarness) -> None:
    a = await phi.create(patient("Alpha"))
    strict = await phi.http.get("/fhir/Patient?favourite-colour=blue", headers=phi.headers())
    assert strict.status_code == 400
    outcome = strict.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "favourite-colour" in outcome["issue"][0]["diagnostics"]

    headers = {**phi.headers(), "Prefer": "handling=lenient"}
    lenient = await phi.http.get("/fhir/Patient?favourite-colour=blue&family=alp", headers=headers)
    assert lenient.status_code == 200
    bundle = lenient.json()
    assert ids(bundle) == [a["id"]]
    warnings = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert warnings
    assert warnings[0]["issue"][0]["severity"] == "warning"
    assert "favourite-colour" in warnings[0]["issue"][0]["diagnostics"]


async def test_post_search_reads_the_form_body(phi: PhiHarness) -> None:
    a = await phi.create(patient("Alpha", mrn="X-9"))
    headers = {**phi.headers(), "Content-Type": "application/x-www-form-urlencoded"}
    response = await phi.http.post(
        "/fhir/Patient/_search", content=f"identifier={MRN}|X-9", headers=headers
    )
    assert response.status_code == 200, response.text
    assert ids(response.json()) == [a["id"]]
    # the self link carries the parameters (the client asked in the body; links are GET form)
    assert "_search" not in response.json()["link"][0]["url"]


async def test_unsupported_type_is_404(phi: PhiHarness) -> None:
    response = await phi.http.get("/fhir/Spaceship?name=x", headers=phi.headers())
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
