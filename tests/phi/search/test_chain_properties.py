"""Property: whatever the token and the chained query, a search reveals nothing the token
could not find through its own plain searches, which in turn return only what it may read.

For generated tokens (subsets of ``user``/``patient``/``system`` scopes on Patient, Observation
or ``*``, some limited to a category, patient-bound or not) and generated queries
(``Observation`` chained into Patient through ``subject``, ``patient`` or ``performer`` on each
of Patient's search parameters, with ``:missing``/``:exact``, ``_summary=count``, ``_total``,
``_include``; ``Patient`` searches with ``_revinclude``), the answer is exactly

- 403 with the refusal naming the first type the token cannot search, or
- the Observations the token's plain ``Observation`` search finds whose chained Patient is one
  that the token's plain ``Patient`` search finds and that matches the parameter,

and every resource the plain searches return answers 200 to the token's read. One world is
built per database; Patient C has a Consent that denies ``user/`` access, the others none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import consent
from tests.phi.search.support import CATEGORY, MRN, observation, patient
from tests.phi.search.test_chain_permissions import refusal

PEOPLE = {
    "A": patient("Avery", "Ann", birth="1970-01-01", mrn="MRN-A", phone="555-0101", postal="10001"),
    "B": patient(
        "Brook",
        "Ben",
        birth="1980-02-02",
        gender="male",
        mrn="MRN-B",
        phone="555-0102",
        postal="20002",
    ),
    "C": patient("Cole", "Cara", birth="1990-03-03", mrn="MRN-C", phone="555-0103", postal="30003"),
}
#: (key, subject, performer, category) of each Observation.
OBSERVATIONS = (
    ("oA", "A", None, "vital-signs"),
    ("oA-lab", "A", None, "laboratory"),
    ("oB", "B", None, "vital-signs"),
    ("oC", "C", None, "vital-signs"),
    ("oA-by-B", "A", "B", "vital-signs"),
    ("oB-by-C", "B", "C", "laboratory"),
)
#: Patient parameter -> how to write a value that finds a person (``{x}`` is the person's key).
VALUES: dict[str, list[str]] = {
    "name": ["{family}", "{given}", "{family2}"],
    "family": ["{family}", "{family2}"],
    "given": ["{given}"],
    "identifier": [f"{MRN}|MRN-{{x}}", "MRN-{x}"],
    "phone": ["555-010{n}"],
    "telecom": ["phone|555-010{n}"],
    "birthdate": ["{birth}", "ge{birth}", "lt{birth}"],
    "gender": ["{gender}"],
    "address-postalcode": ["{postal}", "{postal2}"],
    "_id": ["{id}"],
}
STRINGS = {"name", "family", "given", "address-postalcode"}
CHAINS = {"subject:Patient": "subject", "patient": "subject", "performer:Patient": "performer"}


@dataclass(repr=False)
class World:
    ids: dict[str, str]
    #: Observation id -> {"subject": patient id, "performer": patient id or None}
    links: dict[str, dict[str, str | None]]
    #: token key -> (Patient ids, Observation ids) its plain searches find (None: refused)
    plain: dict[Any, tuple[set[str] | None, set[str] | None]] = field(default_factory=dict)
    truth: dict[str, set[str]] = field(default_factory=dict)


@pytest.fixture
async def world(phi: PhiHarness) -> World:
    ids = {key: (await phi.create(resource))["id"] for key, resource in PEOPLE.items()}
    await phi.create(consent(ids["C"]))
    links: dict[str, dict[str, str | None]] = {}
    for key, subject, performer, category in OBSERVATIONS:
        resource = observation(ids[subject], category=category)
        if performer:
            resource["performer"] = [{"reference": f"Patient/{ids[performer]}"}]
        created = (await phi.create(resource))["id"]
        ids[key] = created
        links[created] = {
            "subject": ids[subject],
            "performer": ids[performer] if performer else None,
        }
    return World(ids, links)


scopes = st.lists(
    st.tuples(
        st.sampled_from(["user", "patient", "system"]),
        st.sampled_from(["Patient", "Observation", "*", "*"]),
        st.sampled_from([False, False, False, True]),  # limited to vital signs
    ),
    min_size=1,
    max_size=4,
    unique=True,
)
queries = st.tuples(
    st.sampled_from(["Observation", "Patient"]),
    st.sampled_from(sorted(CHAINS)),
    st.sampled_from(sorted(VALUES)),
    st.sampled_from(["", "", "", ":missing", ":exact"]),
    st.sampled_from(["A", "B", "C", "A", "B", "C", "nobody"]),
    st.integers(min_value=0),
    st.sets(st.sampled_from(["_summary=count", "_total=accurate", "_include", "_revinclude"])),
)


def _scope_text(chosen: list[tuple[str, str, bool]]) -> str:
    return " ".join(
        f"{context}/{kind}.rs" + (f"?category={CATEGORY}|vital-signs" if limited else "")
        for context, kind, limited in chosen
    )


def _value(world: World, param: str, who: str, variant: int) -> str:
    if who == "nobody":
        return {"birthdate": "1900-01-01", "gender": "unknown", "_id": "nobody"}.get(
            param, "Zz-nobody"
        )
    person = PEOPLE[who]
    name = person["name"][0]
    fields = {
        "x": who,
        "n": "ABC".index(who) + 1,
        "family": name["family"],
        "family2": name["family"][:2],
        "given": name["given"][0],
        "birth": person["birthDate"],
        "gender": person["gender"],
        "postal": person["address"][0]["postalCode"],
        "postal2": person["address"][0]["postalCode"][:3],
        "id": world.ids[who],
    }
    choices = VALUES[param]
    return choices[variant % len(choices)].format(**fields)


async def _found(phi: PhiHarness, query: str, headers: dict[str, str]) -> set[str] | None:
    response = await phi.http.get(f"/fhir/{query}", headers=headers)
    if response.status_code == 403:
        return None
    assert response.status_code == 200, (query, response.text)
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


async def _plain(
    phi: PhiHarness, world: World, key: Any, headers: dict[str, str]
) -> tuple[set[str] | None, set[str] | None]:
    """What the token's plain searches find; each of those resources must answer its read."""
    if key not in world.plain:
        found = []
        for kind in ("Patient", "Observation"):
            ids = await _found(phi, f"{kind}?_count=1000", headers)
            for resource_id in ids or ():
                read = await phi.http.get(f"/fhir/{kind}/{resource_id}", headers=headers)
                assert read.status_code == 200, (kind, resource_id)
            found.append(ids)
        world.plain[key] = (found[0], found[1])
    return world.plain[key]


async def _truth(phi: PhiHarness, world: World, clause: str) -> set[str]:
    """The Patients a system token finds with ``clause`` (the data's own answer)."""
    if clause not in world.truth:
        ids = await _found(phi, f"Patient?{clause}", phi.headers("system/*.rs"))
        assert ids is not None
        world.truth[clause] = ids
    return world.truth[clause]


@settings(
    max_examples=80,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.generate],
)
@given(
    chosen=scopes,
    bound=st.sampled_from([None, "A", "C"]),
    clinician=st.booleans(),
    query=queries,
)
async def test_no_search_reveals_what_the_token_cannot_read(
    phi: PhiHarness,
    world: World,
    chosen: list[tuple[str, str, bool]],
    bound: str | None,
    clinician: bool,
    query: tuple[str, str, str, str, str, int, set[str]],
) -> None:
    kind, chain, param, modifier, who, variant, extras = query
    if modifier == ":exact" and param not in STRINGS:
        modifier = ""
    value = "true" if modifier == ":missing" and variant % 2 else "false"
    if modifier != ":missing":
        value = _value(world, param, who, variant)
    claims: dict[str, Any] = {}
    if bound:
        claims["patient"] = world.ids[bound]
    if clinician:
        claims["roles"] = ["clinician"]
    headers = phi.headers(_scope_text(chosen), **claims)
    patients, observations = await _plain(phi, world, (tuple(chosen), bound, clinician), headers)
    clause = f"{param}{modifier}={quote(value, safe='|:')}"
    truth = await _truth(phi, world, clause)

    if kind == "Observation":
        url = f"Observation?{chain}.{clause}"
        url += "&_include=Observation:patient" if "_include" in extras else ""
        refused = "Observation" if observations is None else "Patient" if patients is None else None
    else:
        url = f"Patient?{clause}"
        url += "&_revinclude=Observation:subject" if "_revinclude" in extras else ""
        refused = "Patient" if patients is None else None
    for extra in ("_summary=count", "_total=accurate"):
        url += f"&{extra}" if extra in extras else ""

    response = await phi.http.get(f"/fhir/{url}", headers=headers)
    url = f"{url} as {_scope_text(chosen)!r} patient={bound} clinician={clinician}"
    if refused is not None:
        event(f"refused: no search on {refused}")
        assert response.status_code == 403, url
        assert response.json() == refusal(refused), url
        return
    assert response.status_code == 200, (url, response.text)
    body = response.json()
    assert patients is not None
    if kind == "Observation":
        assert observations is not None
        element = CHAINS[chain]
        expected = {o for o in observations if world.links[o][element] in truth & patients}
        may_include = patients
    else:
        expected = truth & patients
        may_include = observations or set()
    event(f"{kind}: {'some' if expected else 'no'} matches expected")
    entries = body.get("entry", [])
    matches = {e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"}
    included = {e["resource"]["id"] for e in entries if e["search"]["mode"] == "include"}
    if "_summary=count" in extras:
        assert body["total"] == len(expected), url
        assert matches == included == set(), url
        return
    assert matches == expected, url
    assert included <= may_include, url
    if "total" in body:
        assert body["total"] == len(expected), url
