"""payment-gateway: a Stripe-compatible subset under ``/v1`` (customers, card payment methods,
payment intents, refunds) with Stripe's idempotency, a double-entry ledger and a processor
connector behind one interface."""
