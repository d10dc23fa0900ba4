"""The payment_intents domain of payment-gateway."""
