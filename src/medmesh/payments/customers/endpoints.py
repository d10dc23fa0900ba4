"""``/v1/customers``: create, retrieve, update, delete, list."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from medmesh.payments.customers.schemas import CREATE, LIST, UPDATE
from medmesh.payments.http import Posting, Reading, write_operation
from medmesh.payments.params import Spec

router = APIRouter(prefix="/v1/customers", tags=["customers"])
_NOTHING = Spec({})


@router.post("", summary="Create a customer", openapi_extra=write_operation(CREATE))
async def create_customer(call: Posting) -> Response:
    """Creates a customer. `metadata[patient]=Patient/<id>` ties it to a FHIR Patient."""
    return await call.write(
        CREATE,
        "payments.customer.create",
        lambda session, checked: call.services.customers.create(session, call.caller, checked),
    )


@router.get("/{customer_id}", summary="Retrieve a customer")
async def retrieve_customer(customer_id: str, call: Reading) -> Response:
    """One customer (a deleted one as `{"id", "object", "deleted": true}`)."""
    return await call.read(
        _NOTHING, lambda _: call.services.customers.retrieve(call.session, call.caller, customer_id)
    )


@router.post("/{customer_id}", summary="Update a customer", openapi_extra=write_operation(UPDATE))
async def update_customer(customer_id: str, call: Posting) -> Response:
    """Sets the parameters given; `metadata[key]=` (empty) unsets a key."""
    return await call.write(
        UPDATE,
        "payments.customer.update",
        lambda session, checked: call.services.customers.update(
            session, call.caller, customer_id, checked
        ),
    )


@router.delete("/{customer_id}", summary="Delete a customer")
async def delete_customer(customer_id: str, call: Posting) -> Response:
    """Deletes a customer; retrieving it afterwards shows `deleted: true`."""
    return await call.write(
        _NOTHING,
        "payments.customer.delete",
        lambda session, _: call.services.customers.delete(session, call.caller, customer_id),
    )


@router.get("", summary="List customers")
async def list_customers(call: Reading) -> Response:
    """Customers, newest first (`limit`, `starting_after`, `ending_before`, `email`)."""
    return await call.read(
        LIST, lambda checked: call.services.customers.list(call.session, call.caller, checked)
    )
