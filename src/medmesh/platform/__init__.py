"""The shared layer of medmesh: configuration, the app factory, logging, tracing,
metrics, databases, token verification, errors, security, audit, crypto, the
outbox, service clients and the pytest plugin. It imports no service."""
