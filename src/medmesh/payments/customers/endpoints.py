"""``/v1/customers``: create, retrieve, update, delete, list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.payments.components import Components, Reader, Writer
from medmesh.payments.customers.schemas import CREATE, LIST, UPDATE
from medmesh.payments.http import IDEMPOTENCY_HEADER, read, write
from medmesh.payments.params import Spec, read_params
from medmesh.platform.db import SessionDep

router = APIRouter(prefix="/v1/customers", tags=["customers"])
_NOTHING = Spec({})


@router.post("", summary="Create a customer", openapi_extra=IDEMPOTENCY_HEADER)
async def create_customer(request: Request, caller: Writer, components: Components) -> Response:
    """Creates a customer. `metadata[patient]=Patient/<id>` ties it to a FHIR Patient."""
    params = await read_params(request)
    checked = CREATE.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.customer.create",
        lambda session: components.customers.create(session, caller, checked),
    )


@router.get("/{customer_id}", summary="Retrieve a customer")
async def retrieve_customer(
    customer_id: str, request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """One customer (a deleted one as `{"id", "object", "deleted": true}`)."""
    checked = _NOTHING.parse(await read_params(request))
    return await read(
        session,
        caller,
        components,
        checked,
        await components.customers.retrieve(session, caller, customer_id),
    )


@router.post("/{customer_id}", summary="Update a customer", openapi_extra=IDEMPOTENCY_HEADER)
async def update_customer(
    customer_id: str, request: Request, caller: Writer, components: Components
) -> Response:
    """Sets the parameters given; `metadata[key]=` (empty) unsets a key."""
    params = await read_params(request)
    checked = UPDATE.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.customer.update",
        lambda session: components.customers.update(session, caller, customer_id, checked),
    )


@router.delete("/{customer_id}", summary="Delete a customer")
async def delete_customer(
    customer_id: str, request: Request, caller: Writer, components: Components
) -> Response:
    """Deletes a customer; retrieving it afterwards shows `deleted: true`."""
    params = await read_params(request)
    _NOTHING.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.customer.delete",
        lambda session: components.customers.delete(session, caller, customer_id),
    )


@router.get("", summary="List customers")
async def list_customers(
    request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """Customers, newest first (`limit`, `starting_after`, `ending_before`, `email`)."""
    checked = LIST.parse(await read_params(request))
    return await read(
        session,
        caller,
        components,
        checked,
        await components.customers.list(session, caller, checked),
    )
