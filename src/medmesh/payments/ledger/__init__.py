"""The ledger domain of payment-gateway."""
