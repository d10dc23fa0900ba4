"""synthetic-phi-service: realistic synthetic patients, fast and reproducible.

``engine`` generates patients (no HTTP), ``output`` and ``runner`` write them as FHIR Bundles,
NDJSON and CSV, ``loading`` posts them to phi-service, and the HTTP service (``main``,
``generate``, ``jobs``) serves small runs synchronously and large ones as background jobs.
"""
