"""Stripe's ``expand[]``: an id in a response replaced by its object (``customer``,
``payment_method``, ``payment_intent``; ``data.<field>`` in a list). A field that cannot be
expanded is refused, never silently left as an id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.customers.service import CustomerService
from medmesh.payments.errors import InvalidRequest
from medmesh.payments.payment_intents.service import PaymentIntentService
from medmesh.payments.payment_methods.service import PaymentMethodService
from medmesh.payments.scoping import Caller

#: The fields of each object that ``expand[]`` may name.
EXPANDABLE: dict[str, frozenset[str]] = {
    "payment_intent": frozenset({"customer", "payment_method"}),
    "payment_method": frozenset({"customer"}),
    "refund": frozenset({"payment_intent"}),
}


class Expander:
    def __init__(
        self,
        customers: CustomerService,
        payment_methods: PaymentMethodService,
        payment_intents: PaymentIntentService,
    ) -> None:
        self.customers = customers
        self.payment_methods = payment_methods
        self.payment_intents = payment_intents

    async def apply(
        self,
        session: AsyncSession,
        caller: Caller,
        obj: dict[str, Any],
        paths: list[str],
        created: Mapping[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``obj`` with the ``paths`` of ``expand[]`` replaced by their objects; ``created``:
        objects the request makes and has not stored yet, by id."""
        if not paths:
            return obj
        if obj.get("object") == "list":
            inner = []
            for path in paths:
                if not path.startswith("data."):
                    raise _refused(path)
                inner.append(path.removeprefix("data."))
            data = [await self.apply(session, caller, item, inner, created) for item in obj["data"]]
            return {**obj, "data": data}
        allowed = EXPANDABLE.get(str(obj.get("object")), frozenset())
        out = dict(obj)
        for path in paths:
            if path not in allowed:
                raise _refused(path)
            value = out.get(path)
            if not isinstance(value, str):
                continue
            if created and value in created:
                out[path] = created[value]
            elif path == "customer":
                out[path] = await self.customers.retrieve(session, caller, value)
            elif path == "payment_method":
                out[path] = await self.payment_methods.retrieve(session, caller, value)
            else:
                out[path] = await self.payment_intents.retrieve(session, caller, value)
        return out


def _refused(path: str) -> InvalidRequest:
    return InvalidRequest(
        f"This property cannot be expanded ({path}).", param="expand", code="parameter_invalid"
    )
