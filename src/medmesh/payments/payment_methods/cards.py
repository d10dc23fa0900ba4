"""Stripe's test payment method ids and the fingerprint of a card number."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

#: ``pm_card_*`` ids a request may name instead of card details (Stripe's test mode).
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_jcb": "3566002020360505",
    "pm_card_unionpay": "6200000000000005",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_threeDSecure2Required": "4000002500003155",
}


class CardFingerprints:
    """HMAC-SHA256 of the number under a key of the gateway: equal cards, equal fingerprints;
    without the key a fingerprint cannot be tested against guessed numbers."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the card fingerprint key must have at least 32 bytes")
        self._key = key

    @classmethod
    def from_setting(
        cls, setting: str, var_dir: Path, environment: str = "development"
    ) -> CardFingerprints:
        """The key of ``fingerprint_key`` (base64url), or the development key file in
        ``var_dir`` (made on first use, readable by its owner only). Production refuses to
        start without the setting: replicas must share one key, or one card would get a
        fingerprint per pod."""
        if setting:
            return cls(base64.urlsafe_b64decode(setting + "=" * (-len(setting) % 4)))
        if environment == "production":
            raise RuntimeError("MEDMESH_PAYMENTS_FINGERPRINT_KEY must be set in production")
        path = var_dir / "payments-fingerprint.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        return cls(base64.urlsafe_b64decode(path.read_text().strip()))

    def derived_key(self, purpose: str) -> bytes:
        """A key for another use, derived from this one (HMAC of ``purpose``)."""
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    def of(self, number: str) -> str:
        digest = hmac.new(self._key, number.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:12]).decode()
