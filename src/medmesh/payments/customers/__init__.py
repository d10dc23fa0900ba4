"""The customers domain of payment-gateway."""
