from __future__ import annotations

import pytest

from tests.payments.conftest import PaymentsHarness


@pytest.mark.postgres
async def test_customer_create_retrieve_update_delete(payments: PaymentsHarness) -> None:
    created = await payments.ok(
        "/v1/customers",
        {"email": "jo@example.org", "name": "Jo", "metadata[patient]": "Patient/p-1"},
    )
    assert created["id"].startswith("cus_")
    assert created["object"] == "customer"
    assert isinstance(created["created"], int)
    assert created["metadata"] == {"patient": "Patient/p-1"}

    found = await payments.get(f"/v1/customers/{created['id']}")
    assert found == created

    updated = await payments.ok(
        f"/v1/customers/{created['id']}", {"name": "Jo Doe", "metadata[tier]": "gold"}
    )
    assert updated["name"] == "Jo Doe"
    assert updated["metadata"] == {"patient": "Patient/p-1", "tier": "gold"}
    unset = await payments.ok(f"/v1/customers/{created['id']}", {"metadata[tier]": ""})
    assert unset["metadata"] == {"patient": "Patient/p-1"}

    deleted = await payments.http.delete(
        f"/v1/customers/{created['id']}", headers=payments.headers()
    )
    assert deleted.json() == {"id": created["id"], "object": "customer", "deleted": True}
    assert (await payments.get(f"/v1/customers/{created['id']}"))["deleted"] is True
    assert (await payments.get("/v1/customers"))["data"] == []


@pytest.mark.postgres
async def test_customer_list_pages_newest_first(payments: PaymentsHarness) -> None:
    ids = [(await payments.ok("/v1/customers", {"name": f"c{i}"}))["id"] for i in range(5)]
    first = await payments.get("/v1/customers", limit=2)
    assert first["object"] == "list"
    assert first["url"] == "/v1/customers"
    assert [c["id"] for c in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    second = await payments.get("/v1/customers", limit=2, starting_after=first["data"][-1]["id"])
    assert [c["id"] for c in second["data"]] == ids[::-1][2:4]
    last = await payments.get("/v1/customers", limit=2, starting_after=second["data"][-1]["id"])
    assert [c["id"] for c in last["data"]] == [ids[0]]
    assert last["has_more"] is False
    back = await payments.get("/v1/customers", limit=2, ending_before=second["data"][0]["id"])
    assert [c["id"] for c in back["data"]] == ids[::-1][:2]


async def test_missing_customer_is_resource_missing(payments: PaymentsHarness) -> None:
    response = await payments.http.get("/v1/customers/cus_nope", headers=payments.headers())
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": "No such customer: 'cus_nope'",
            "param": "id",
        }
    }


async def test_tokens_and_scopes(payments: PaymentsHarness) -> None:
    anonymous = await payments.http.get("/v1/customers")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"
    reader = payments.headers("payments:read")
    refused = await payments.http.post("/v1/customers", data={"name": "x"}, headers=reader)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert (await payments.http.get("/v1/customers", headers=reader)).status_code == 200
    assert await payments.count("customers") == 0


@pytest.mark.postgres
async def test_a_patient_bound_token_sees_only_its_patient(payments: PaymentsHarness) -> None:
    mine = await payments.ok("/v1/customers", {"metadata[patient]": "Patient/p-1"})
    theirs = await payments.ok("/v1/customers", {"metadata[patient]": "Patient/p-2"})
    patient = payments.headers("payments:write", patient="p-1")
    listed = await payments.http.get("/v1/customers", headers=patient)
    assert [c["id"] for c in listed.json()["data"]] == [mine["id"]]
    other = await payments.http.get(f"/v1/customers/{theirs['id']}", headers=patient)
    assert other.status_code == 404
    spoof = await payments.http.post(
        "/v1/customers", data={"metadata[patient]": "Patient/p-2"}, headers=patient
    )
    assert spoof.status_code == 403
    own = await payments.http.post("/v1/customers", data={"name": "me"}, headers=patient)
    assert own.json()["metadata"] == {"patient": "Patient/p-1"}
