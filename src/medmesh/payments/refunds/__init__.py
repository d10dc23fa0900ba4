"""The refunds domain of payment-gateway."""
