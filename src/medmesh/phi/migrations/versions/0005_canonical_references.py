"""stored references re-read in canonical form: compartments and reference index rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 22:30:00

Before this revision an absolute reference to this server (``http://host/fhir/Patient/B``)
and spellings such as ``Patient/B/`` or ``patient/B`` put a resource into no compartment,
and another server's ``Patient/B`` was indexed as a local one. Compartments and reference
index rows derive from the encrypted bodies, so re-deriving them needs the phi keys, which
a migration does not get from its database URL:

- when ``MEDMESH_PHI_ENCRYPTION_KEYS`` and ``MEDMESH_PHI_BLIND_INDEX_KEY`` are set where the
  migration runs (production always sets them), this revision repairs every stored row
  itself (:class:`medmesh.phi.reference_repair.ReferenceRepair`), with
  ``MEDMESH_PHI_BASE_URL`` as this server's base;
- otherwise (development keys in ``var/phi-keys.key``) it changes nothing and logs that
  ``medmesh admin repair-phi-references`` must run; that command does the same with the
  service's settings, and takes ``--base-url`` for every other base the service was reached
  under (absolute references under those are this server's too). It can be rerun at any
  time: rows already right are left alone.

Bodies are not rewritten: no version is added and history stays as submitted.
Downgrade changes nothing (the repaired rows are right for older code as well).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from medmesh.phi.config import PhiSettings
    from medmesh.phi.protection import load_protection
    from medmesh.phi.reference_repair import ReferenceRepair, bases_of
    from medmesh.platform.logging import get_logger

    settings = PhiSettings()
    if not (settings.encryption_keys and settings.blind_index_key):
        get_logger("medmesh.phi.migrations").warning(
            "phi_reference_repair_pending",
            detail="no phi keys where the migration runs: run `medmesh admin "
            "repair-phi-references` with the service's settings",
        )
        return
    repair = ReferenceRepair(load_protection(settings), bases_of(settings))
    report = repair.run(op.get_bind())
    get_logger("medmesh.phi.migrations").info(
        "phi_reference_repair_done",
        resources=report.resources,
        versions=report.versions,
        compartments_fixed=report.compartments_fixed,
        versions_fixed=report.versions_fixed,
        indexes_fixed=report.indexes_fixed,
        unreadable=report.unreadable,
    )


def downgrade() -> None:
    pass
