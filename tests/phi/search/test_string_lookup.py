"""String search through the lookup index of short prefixes (decision 0047): only prefixes of at
most ``LOOKUP_PREFIX`` characters are in it; longer prefixes and whole values are checked on the
resource's own rows. Searches answer exactly what a lookup of every token would."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import quote

from sqlalchemy import select, update

from medmesh.phi.search.definitions import parameters_of
from medmesh.phi.search.extract import LOOKUP_PREFIX, MAX_PREFIX
from medmesh.phi.search.models import StringIndexRow
from tests.phi.conftest import PhiHarness
from tests.phi.search.support import ids, patient, search
from tests.phi.test_conformance import SYNTHEA_2019


async def _rows(phi: PhiHarness, resource_id: str) -> list[tuple[str, bool]]:
    async with phi.app.state.database.unit_of_work() as session:
        result = await session.execute(
            select(StringIndexRow.param, StringIndexRow.indexed).where(
                StringIndexRow.resource_id == resource_id
            )
        )
        return [(param, bool(indexed)) for param, indexed in result]


async def test_only_the_short_prefixes_of_a_value_are_in_the_lookup_index(phi: PhiHarness) -> None:
    created = await phi.create(patient("Smithers", "Al"))

    rows = await _rows(phi, created["id"])

    # "smithers": the whole value and 8 prefixes, 3 of them short; "al": the whole and 2 prefixes
    assert sorted(rows) == sorted(
        [("family", True)] * LOOKUP_PREFIX
        + [("family", False)] * (1 + 8 - LOOKUP_PREFIX)
        + [("given", True)] * 2
        + [("given", False)]
    )


async def test_longer_prefixes_and_whole_values_are_checked_on_the_resources_rows(
    phi: PhiHarness,
) -> None:
    made = {
        name: (await phi.create(patient(family, given)))["id"]
        for name, family, given in [
            ("smith", "Smith", "Ann"),
            ("smithers", "Smithers", "Bo"),
            ("smyth", "Smyth", "Cy"),
            ("smit", "Smit", "Di"),
            ("jones", "Jones", "Smithy"),
            ("smi", "Smi", "Thers"),
        ]
    }

    async def found(query: str) -> set[str]:
        got = set(ids(await search(phi, f"Patient?{query}")))
        return {name for name, resource_id in made.items() if resource_id in got}

    assert await found("family=sm") == {"smith", "smithers", "smyth", "smit", "smi"}
    assert await found("family=smi") == {"smith", "smithers", "smit", "smi"}
    assert await found("family=smit") == {"smith", "smithers", "smit"}
    assert await found("family=smith") == {"smith", "smithers"}
    assert await found("family=SMITHE") == {"smithers"}
    assert await found("family=smithersx") == set()
    assert await found("family:exact=smith") == {"smith"}
    assert await found("family:exact=smit") == {"smit"}
    assert await found("family:exact=smi") == {"smi"}
    assert await found("family:exact=smithe") == set()
    assert await found("family=smith,smy") == {"smith", "smithers", "smyth"}
    assert await found("family=smit,smithers") == {"smith", "smithers", "smit"}
    # a value is checked within its own parameter: the "Smi" family's given name is "Thers"
    assert await found("given=smith") == {"jones"}
    assert await found("name=smith") == {"smith", "smithers", "jones"}
    assert await found("name:missing=false&family=smi") == {"smith", "smithers", "smit", "smi"}


def _synthea_people() -> list[dict[str, Any]]:
    people = []
    for path in sorted(SYNTHEA_2019.glob("*.json"))[:4]:
        bundle = json.loads(path.read_text())
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] in ("Patient", "Practitioner", "Organization"):
                resource = {k: v for k, v in resource.items() if k not in ("id", "text")}
                people.append(resource)
    return people


def _values(resource: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    for name in resource.get("name", []):
        if isinstance(name, str):
            texts.append(name)
            continue
        texts += [name.get("family", ""), *name.get("given", []), *name.get("prefix", [])]
    for address in resource.get("address", []):
        texts += [*address.get("line", []), address.get("city", ""), address.get("state", "")]
    return [t for t in texts if t]


async def test_searches_answer_what_a_lookup_of_every_token_answers(phi: PhiHarness) -> None:
    """The plain path: every token of every value is a row of ``search_strings``; the resources
    holding a query's token (the whole prefix, or the whole value for ``:exact``) in one of the
    parameter's rows are the answer. Compared on Synthea's people and places, for every prefix
    of every value (and one character more), whole and cut, with and without ``:exact``; then
    again once every row is in the lookup index, as rows stored before it are."""
    people = _synthea_people()
    for resource in people:
        await phi.create(resource)
    blind = phi.app.state.phi.protection.blind_index
    queries: set[tuple[str, str, str]] = set()
    for resource in people:
        kind = resource["resourceType"]
        for text in _values(resource):
            for n in itertools.chain(range(1, min(len(text), 8) + 2), (len(text), MAX_PREFIX)):
                queries.add((kind, "", text[:n] + ("x" if n > len(text) else "")))
            queries.add((kind, ":exact", text))
            queries.add((kind, ":exact", text[: max(1, len(text) - 1)]))
    # FHIR escapes "," "$" "|" and "\\" in search values: not this test's subject
    queries = {q for q in queries if not set(q[2]) & set(",$|\\") and q[2].strip()}
    params = {"Patient": "name", "Practitioner": "name", "Organization": "name"}
    address = {"Patient": "address", "Practitioner": "address", "Organization": "address"}

    async def plain(kind: str, param: str, modifier: str, value: str) -> set[str]:
        definition = parameters_of(kind)[param]
        token = blind.token(value) if modifier else blind.prefix_token(value[:MAX_PREFIX])
        async with phi.app.state.database.unit_of_work() as session:
            result = await session.execute(
                select(StringIndexRow.resource_id).where(
                    StringIndexRow.resource_type == kind,
                    StringIndexRow.param.in_(definition.read_keys),
                    StringIndexRow.token == token,
                )
            )
            return set(result.scalars())

    async def compare() -> int:
        checked = 0
        for kind, modifier, value in sorted(queries):
            for param in (params[kind], address[kind]):
                query = f"{kind}?{param}{modifier}={quote(value, safe='')}&_count=500"
                expected = await plain(kind, param, modifier, value)
                assert set(ids(await search(phi, query))) == expected, query
                checked += bool(expected)
        return checked

    assert await compare() > 100
    async with phi.app.state.database.unit_of_work() as session:
        await session.execute(update(StringIndexRow).values(indexed=True))
    assert await compare() > 100
