"""The idempotency domain of payment-gateway."""
