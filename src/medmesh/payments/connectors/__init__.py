"""Processor connectors behind one interface: a card is tokenized once (the number never
leaves this call), and payments are authorized, captured and refunded by that token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from medmesh.payments.config import PaymentsSettings


@dataclass(frozen=True, slots=True, repr=False)
class CardDetails:
    """Card details as submitted. Held only while a card is tokenized; its repr shows none of
    them, so no log or traceback can carry the number or the CVC."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str | None

    def __repr__(self) -> str:
        return "CardDetails(<redacted>)"


@dataclass(frozen=True, slots=True)
class TokenizedCard:
    """What is kept of a card: the processor's token and the facts Stripe shows."""

    processor_token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    funding: str
    country: str | None


@dataclass(frozen=True, slots=True)
class Authorization:
    """A processor's answer to a payment: approved, declined (with Stripe's codes), or needing
    the cardholder (3-D Secure)."""

    outcome: Literal["approved", "declined", "requires_action"]
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    network_reference: str | None = None


class Connector(Protocol):
    """One payment processor."""

    name: str

    def tokenize(self, card: CardDetails) -> TokenizedCard:
        """Keep the card at the processor; raise ``CardError`` for a number it refuses."""
        ...

    async def authorize(
        self, token: str, amount: int, currency: str, *, authenticated: bool = False
    ) -> Authorization:
        """Authorize ``amount``; ``authenticated`` once the cardholder completed 3-D Secure."""
        ...

    async def capture(self, reference: str, amount: int, currency: str) -> int:
        """Capture ``amount`` of an authorization; the processor's fee, in the same minor units."""
        ...

    async def refund(self, reference: str, amount: int, currency: str) -> None:
        """Return ``amount`` of a captured payment."""
        ...


def connector_for(settings: PaymentsSettings) -> Connector:
    """The connector ``settings.connector`` names."""
    from medmesh.payments.connectors.simulator import SimulatorConnector

    return SimulatorConnector()
