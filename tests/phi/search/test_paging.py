"""Pages, sorting, totals: keyset links that stay correct while data changes."""

from __future__ import annotations

from typing import Any

from tests.phi.conftest import PhiHarness
from tests.phi.search.support import ids, link, observation, patient, search


async def follow(phi: PhiHarness, url: str) -> dict[str, Any]:
    response = await phi.http.get(url, headers=phi.headers("system/*.rs"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_pages_stay_correct_when_a_resource_is_inserted_between_pages(
    phi: PhiHarness,
) -> None:
    created = [(await phi.create(patient(f"Pager{i}")))["id"] for i in range(7)]
    first = await search(phi, "Patient?family=pager&_count=3&_total=accurate")
    assert first["total"] == 7
    assert len(ids(first)) == 3
    assert link(first, "previous") is None
    # a new patient that sorts before the next page (ids are random hex): the next page neither
    # repeats nor skips the patients that existed
    await phi.create(patient("Pager-late"))
    seen = list(ids(first))
    page = first
    while (next_url := link(page, "next")) is not None:
        page = await follow(phi, next_url)
        seen += ids(page)
    assert len(seen) == len(set(seen))
    assert set(created) <= set(seen)
    assert seen == sorted(seen)


async def test_previous_links_walk_back(phi: PhiHarness) -> None:
    for i in range(5):
        await phi.create(patient(f"Back{i}"))
    first = await search(phi, "Patient?family=back&_count=2")
    second = await follow(phi, link(first, "next") or "")
    third = await follow(phi, link(second, "next") or "")
    assert link(third, "next") is None
    assert len(ids(third)) == 1
    back = await follow(phi, link(third, "previous") or "")
    assert ids(back) == ids(second)
    back_again = await follow(phi, link(back, "previous") or "")
    assert ids(back_again) == ids(first)
    assert link(back_again, "previous") is None
    assert ids(await follow(phi, link(back_again, "next") or "")) == ids(second)


async def test_sort_by_date_and_last_updated(phi: PhiHarness) -> None:
    p = await phi.create(patient("Sorter"))
    days = ["2020-03-01", "2019-01-01", "2021-12-31", "2020-01-01"]
    by_day = {}
    for day in days:
        created = await phi.create(observation(p["id"], when=f"{day}T00:00:00Z"))
        by_day[created["id"]] = day
    undated = await phi.create(
        {k: v for k, v in observation(p["id"]).items() if k != "effectiveDateTime"}
    )

    ascending = ids(await search(phi, "Observation?_sort=date"))
    assert [by_day.get(i) for i in ascending] == [*sorted(days), None]
    assert ascending[-1] == undated["id"]
    descending = await search(phi, "Observation?_sort=-date&_count=2")
    walked = ids(descending)
    page = descending
    while (url := link(page, "next")) is not None:
        page = await follow(phi, url)
        walked += ids(page)
    assert [by_day.get(i) for i in walked] == [*sorted(days, reverse=True), None]

    newest_first = ids(await search(phi, "Observation?_sort=-_lastUpdated"))
    assert newest_first[0] == undated["id"]
    births = [
        (await phi.create(patient("Born", birth=b)))["id"]
        for b in ("1990", "1980-05-01", "2001-02-03")
    ]
    assert ids(await search(phi, "Patient?family=born&_sort=birthdate")) == [
        births[1],
        births[0],
        births[2],
    ]
    bad = await phi.http.get("/fhir/Patient?_sort=family", headers=phi.headers())
    assert bad.status_code == 400


async def test_summary_count_and_total(phi: PhiHarness) -> None:
    for i in range(4):
        await phi.create(patient(f"Counted{i}"))
    summary = await search(phi, "Patient?family=counted&_summary=count")
    assert summary["total"] == 4
    assert "entry" not in summary or summary["entry"] == []
    none = await search(phi, "Patient?family=counted&_total=none&_count=2")
    assert "total" not in none
    # by default the total comes when it is free: everything fits on the page
    assert (await search(phi, "Patient?family=counted"))["total"] == 4
    assert "total" not in await search(phi, "Patient?family=counted&_count=2")
    second = await follow(
        phi,
        link(await search(phi, "Patient?family=counted&_total=accurate&_count=2"), "next") or "",
    )
    assert second["total"] == 4
    assert (await search(phi, "Patient?family=counted&_count=0"))["total"] == 4
    capped = await search(phi, "Patient?_count=5000")
    assert len(ids(capped)) == 4


async def test_bad_cursor_is_400(phi: PhiHarness) -> None:
    response = await phi.http.get("/fhir/Patient?_page=not-a-cursor", headers=phi.headers())
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_bundle_shape(phi: PhiHarness) -> None:
    p = await phi.create(patient("Shape"))
    bundle = await search(phi, "Patient?family=shape")
    assert bundle["type"] == "searchset"
    entry = bundle["entry"][0]
    assert entry["fullUrl"].endswith(f"/fhir/Patient/{p['id']}")
    assert entry["search"] == {"mode": "match"}
    assert entry["resource"]["name"][0]["family"] == "Shape"
    assert link(
        bundle,
        "self",
    ).startswith("http://phi.test/fhir/Patient?family=shape")  # type: ignore[union-attr]
