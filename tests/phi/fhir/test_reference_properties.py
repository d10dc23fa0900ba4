"""Property: an access rule that holds for one spelling of a reference holds for all.

For generated spellings of a reference to a patient (scheme and host case, ports, path case,
doubled or trailing slashes, whitespace, type case, queries, fragments, version suffixes,
relative forms, other servers), an Observation created with it by a clinician is either

- refused: 400 for a malformed local-looking spelling, or the Consent's 403 for a spelling
  that means the denied patient — and nothing is stored; or
- stored as ``Patient/<id>`` (possibly version-specific): then it is in that patient's
  compartment (the patient's own token reads it), found by the canonical search, and refused
  to a ``user/`` token when that patient's Consent denies access; or
- stored as given, as an external reference: then it is in no compartment (the patient's
  token cannot read it) and no canonical search finds it.

Never the finding of issue #13: indexed as the patient's for search yet outside the
compartment, or past a Consent because of how the reference was written.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import consent, observation, patient, stored_rows

CLINICIAN: dict[str, Any] = {"scope": "user/*.cruds", "roles": ["clinician"], "sub": "dr-who"}


def _mostly(usual: str, *unusual: str) -> st.SearchStrategy[str]:
    """``usual`` about five times in six, else one of the unusual spellings."""
    return st.sampled_from([usual] * (5 * len(unusual)) + list(unusual))


schemes = _mostly("http", "HTTP", "Http", "https", "ftp")
hosts = _mostly("phi.test", "PHI.TEST", "Phi.Test", "other.example.org", "phi.test.")
ports = _mostly("", ":80", ":443", ":8080")
roots = _mostly("/fhir", "/FHIR", "/fhir/", "", "/fhir/fhir")
types = _mostly("Patient", "patient", "PATIENT", "Patients", "Group")
separators = _mostly("/", "//", "/./")
suffixes = _mostly("", "/", "?x=1", "#frag", "/_history/1", "/_history/", "/$everything")
padding = _mostly("", " ", "\t", "\n")


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    """(template, which patient): ``{id}`` in the template stands for that patient's id."""
    who = draw(st.sampled_from(["open", "denied"]))
    kind = draw(types)
    tail = f"{kind}{draw(separators)}{{id}}{draw(suffixes)}"
    if draw(st.booleans()):
        text = f"{draw(schemes)}://{draw(hosts)}{draw(ports)}{draw(roots)}/{tail}"
    else:
        text = tail if draw(st.booleans()) else f"/{tail}"
    return f"{draw(padding)}{text}{draw(padding)}", who


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.generate],
)
@given(spelling=spellings())
async def test_every_spelling_lands_in_the_compartment_it_names_or_none(
    phi: PhiHarness, spelling: tuple[str, str]
) -> None:
    template, who = spelling
    ids = {
        "open": (await phi.create(patient("Open")))["id"],
        "denied": (await phi.create(patient("Private")))["id"],
    }
    await phi.create(consent(ids["denied"]))
    target = ids[who]
    reference = template.format(id=target)
    resource = observation("x")
    resource["subject"] = {"reference": reference}
    clinician = phi.headers(**CLINICIAN)
    before = await stored_rows(phi.app)
    response = await phi.http.post("/fhir/Observation", json=resource, headers=clinician)
    shown = f"{reference!r} ({who})"

    if response.status_code in (400, 403):
        event(f"refused {response.status_code}")
        issue = response.json()["issue"][0]
        expected_code = "value" if response.status_code == 400 else "forbidden"
        assert issue["code"] == expected_code, shown
        if response.status_code == 403:
            assert who == "denied", shown
        assert await stored_rows(phi.app) == before, shown
        return

    assert response.status_code == 201, (shown, response.text)
    created = response.json()
    stored = created["subject"]["reference"]
    own = phi.headers("patient/*.rs", patient=target, roles=["patient"], sub="pat")
    system = phi.headers("system/*.rs")
    own_read = await phi.http.get(f"/fhir/Observation/{created['id']}", headers=own)
    found = await phi.http.get(
        "/fhir/Observation", params={"subject": f"Patient/{target}"}, headers=system
    )
    assert found.status_code == 200
    found_ids = {e["resource"]["id"] for e in found.json().get("entry", [])}

    if stored in (f"Patient/{target}", f"Patient/{target}/_history/1"):
        event("stored canonical")
        # A spelling that means the denied patient never gets past its Consent.
        assert who == "open", shown
        assert own_read.status_code == 200, shown
        assert created["id"] in found_ids, shown
    else:
        event("stored as external")
        assert stored == reference, shown
        assert "://" in reference, shown
        assert (
            not reference.lstrip()
            .lower()
            .startswith(("http://phi.test/fhir/", "https://phi.test/fhir/"))
        ), shown
        assert own_read.status_code == 403, shown
        assert created["id"] not in found_ids, shown
