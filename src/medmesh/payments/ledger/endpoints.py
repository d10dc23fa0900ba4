"""``/v1/ledger``: balances and the reconciliation (scope ``payments:admin``), and a
customer's statement."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.payments.components import Admin, Components, Reader
from medmesh.payments.objects import stripe_response
from medmesh.payments.paging import ListPage
from medmesh.payments.params import LIST_FIELDS, Spec, read_params
from medmesh.platform.db import SessionDep

router = APIRouter(tags=["ledger"])
_NOTHING = Spec({})
_PAGE = Spec(LIST_FIELDS)


@router.get("/v1/ledger/balances", summary="Ledger balances")
async def ledger_balances(
    request: Request, _: Admin, session: SessionDep, components: Components
) -> Response:
    """Each account's debits, credits and balance per currency."""
    _NOTHING.parse(await read_params(request))
    return stripe_response(await components.ledger.balances(session))


@router.get("/v1/ledger/reconciliation", summary="Reconcile the ledger with the payments")
async def ledger_reconciliation(
    request: Request, _: Admin, session: SessionDep, components: Components
) -> Response:
    """Per currency: debits equal credits, the ledger's captures equal the intents' received
    amounts and its refunds the refunds'. `balanced` is true when every check holds."""
    _NOTHING.parse(await read_params(request))
    return stripe_response(await components.ledger.reconcile(session))


@router.get("/v1/customers/{customer_id}/statement", summary="A customer's statement")
async def customer_statement(
    customer_id: str, request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """The ledger entries of the customer's payments and refunds, newest first."""
    page = ListPage.of(_PAGE.parse(await read_params(request)))
    customer = await components.customers.get_row(session, caller, customer_id)
    return stripe_response(await components.ledger.statement(session, customer.id, page))
