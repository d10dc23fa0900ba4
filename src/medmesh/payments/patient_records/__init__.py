"""The patient's record: succeeded payments and refunds recorded in phi-service."""
