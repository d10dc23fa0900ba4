"""The service's domain services (built once per app), its typed state, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from medmesh.payments.customers.service import CustomerService
from medmesh.payments.events.service import EventService
from medmesh.payments.expansion import Expander
from medmesh.payments.idempotency.service import IdempotentWrites
from medmesh.payments.ledger.service import LedgerService
from medmesh.payments.payment_intents.service import PaymentIntentService
from medmesh.payments.payment_methods.service import PaymentMethodService
from medmesh.payments.refunds.service import RefundService
from medmesh.payments.scoping import Caller
from medmesh.payments.webhooks.service import WebhookEndpointService
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.state import PlatformState
from medmesh.platform.tokens import Principal, RequireScopes

READ, WRITE, ADMIN = "payments:read", "payments:write", "payments:admin"


@dataclass
class PaymentsComponents:
    writes: IdempotentWrites
    customers: CustomerService
    payment_methods: PaymentMethodService
    payment_intents: PaymentIntentService
    refunds: RefundService
    ledger: LedgerService
    expander: Expander
    events: EventService
    webhooks: WebhookEndpointService


class PaymentsState(PlatformState):
    """``app.state`` of the payment gateway."""

    payments: PaymentsComponents


async def get_components(request: Request) -> PaymentsComponents:
    return PaymentsState.of(request.app).payments


Components = Annotated[PaymentsComponents, Depends(get_components)]
_CanRead = Annotated[Principal, Depends(RequireScopes(READ, WRITE, ADMIN, any_of=True))]
#: The scopes of a write (``payments:write`` or ``payments:admin``).
WRITE_ACCESS = RequireScopes(WRITE, ADMIN, any_of=True)
#: The OpenAPI security of a write (as ``WRITE_ACCESS`` as a dependency documents it), for a
#: direct route, which has no dependencies.
WRITE_SECURITY = [{"oauth2": [WRITE]}, {"oauth2": [ADMIN]}, {"bearer": []}]
_CanWrite = Annotated[Principal, Depends(WRITE_ACCESS)]
_CanAdmin = Annotated[Principal, Depends(RequireScopes(ADMIN))]


async def _reader(request: Request, principal: _CanRead) -> Caller:
    return Caller(RequestOrigin.of(request, principal))


async def _writer(request: Request, principal: _CanWrite) -> Caller:
    return Caller(RequestOrigin.of(request, principal))


async def _admin(request: Request, principal: _CanAdmin) -> Caller:
    return Caller(RequestOrigin.of(request, principal))


#: A caller holding ``payments:read`` (or write, or admin).
Reader = Annotated[Caller, Depends(_reader)]
#: A caller holding ``payments:write`` (or admin).
Writer = Annotated[Caller, Depends(_writer)]
#: A caller holding ``payments:admin`` (the ledger).
Admin = Annotated[Caller, Depends(_admin)]
