"""The payment_methods domain of payment-gateway."""
