"""Bulk load without Bundles: NDJSON files in the FHIR Bulk Data layout (one resource a line).

:class:`~medmesh.phi.bulk_import.importer.NdjsonImporter` stores the lines of one file in
chunks, each chunk one transaction whose resources are written together (as a transaction
Bundle's creates are), every line validated, checked and audited like a single write.
``medmesh phi import DIR`` (:mod:`~medmesh.phi.bulk_import.standalone`) runs it on files on
disk; ``POST /fhir/$import`` (:mod:`~medmesh.phi.bulk_import.jobs`) on files it fetches.
"""
