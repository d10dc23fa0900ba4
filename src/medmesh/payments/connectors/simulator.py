"""The ``simulator`` processor: Stripe's test mode for its documented test cards.

The token it returns names the behaviour of the card (and nothing of its number), the way a
real processor's vault keeps the number and hands back a reference.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from medmesh.payments.connectors import Authorization, CardDetails, TokenizedCard
from medmesh.payments.currencies import minor_digits
from medmesh.payments.errors import CardError

#: Test numbers and the decline each one gives (Stripe's codes and messages).
DECLINES: dict[str, tuple[str, str | None, str]] = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": (
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    "4000000000000119": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
}
#: Test numbers that need 3-D Secure on every payment.
THREE_D_SECURE = frozenset({"4000002760003184", "4000002500003155"})

_BEHAVIOURS = {number: f"decline-{i}" for i, number in enumerate(sorted(DECLINES))}
_DECLINE_OF = {behaviour: DECLINES[number] for number, behaviour in _BEHAVIOURS.items()}


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> str:
    """The card network by the number's prefix (Stripe's brand names)."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    if 51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3]) <= 649:
        return "discover"
    if 3528 <= int(number[:4]) <= 3589:
        return "jcb"
    if number[:2] in ("36", "38", "39") or 300 <= int(number[:3]) <= 305:
        return "diners"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


class SimulatorConnector:
    """Approves, declines or asks for 3-D Secure as Stripe's test cards do; keeps nothing."""

    name = "simulator"

    def tokenize(self, card: CardDetails) -> TokenizedCard:
        number = card.number
        if not (number.isdigit() and 12 <= len(number) <= 19 and luhn_valid(number)):
            raise CardError(
                "Your card number is incorrect.", code="incorrect_number", param="card[number]"
            )
        if not 1 <= card.exp_month <= 12:
            raise CardError(
                "Your card's expiration month is invalid.",
                code="invalid_expiry_month",
                param="card[exp_month]",
            )
        now = datetime.now(UTC)
        if (card.exp_year, card.exp_month) < (now.year, now.month) or card.exp_year > now.year + 50:
            raise CardError(
                "Your card's expiration year is invalid.",
                code="invalid_expiry_year",
                param="card[exp_year]",
            )
        if card.cvc is not None and not (card.cvc.isdigit() and len(card.cvc) in (3, 4)):
            raise CardError(
                "Your card's security code is invalid.", code="invalid_cvc", param="card[cvc]"
            )
        if number in THREE_D_SECURE:
            behaviour = "three-d-secure"
        else:
            behaviour = _BEHAVIOURS.get(number, "approve")
        return TokenizedCard(
            processor_token=f"sim_{behaviour}_{secrets.token_hex(8)}",
            brand=brand_of(number),
            last4=number[-4:],
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            funding="debit" if number == "4000056655665556" else "credit",
            country="US",
        )

    async def authorize(
        self, token: str, amount: int, currency: str, *, authenticated: bool = False
    ) -> Authorization:
        behaviour = token.removeprefix("sim_").rsplit("_", 1)[0]
        decline = _DECLINE_OF.get(behaviour)
        if decline is not None:
            code, decline_code, message = decline
            return Authorization("declined", code=code, decline_code=decline_code, message=message)
        if behaviour == "three-d-secure" and not authenticated:
            return Authorization("requires_action")
        return Authorization("approved", network_reference=f"sim_auth_{secrets.token_hex(8)}")

    async def capture(self, reference: str, amount: int, currency: str) -> int:
        """Stripe's US card pricing: 2.9 % (rounded half up) plus 30 minor units, with no fixed
        part in currencies without minor units."""
        fixed = 30 if minor_digits(currency) else 0
        return (amount * 29 + 500) // 1000 + fixed

    async def refund(self, reference: str, amount: int, currency: str) -> None:
        return None
