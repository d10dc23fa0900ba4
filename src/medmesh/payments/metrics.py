"""payment-gateway domain metrics (registered on the app's registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

from medmesh.platform.metrics import ServiceMetrics

#: How a POST ended: it ran and succeeded, ran into a card error, was answered from its
#: idempotency key, found its key in use, or was refused before changing anything.
OUTCOMES = ("succeeded", "card_error", "replayed", "key_in_use", "refused")


@dataclass(frozen=True)
class PaymentsMetrics:
    writes: Counter
    declines: Counter
    expired_keys: Counter

    @classmethod
    def register(cls, metrics: ServiceMetrics) -> PaymentsMetrics:
        writes = metrics.counter(
            "medmesh_payments_writes_total",
            "POST and DELETE requests by action (payments.payment_intent.confirm ...) and outcome.",
            ("action", "outcome"),
        )
        declines = metrics.counter(
            "medmesh_payments_card_errors_total",
            "Card errors answered (402), by Stripe's code (card_declined, expired_card ...).",
            ("code",),
        )
        expired = metrics.counter(
            "medmesh_payments_idempotency_keys_expired_total",
            "Idempotency keys deleted after their replay window.",
        )
        return cls(writes, declines, expired)
