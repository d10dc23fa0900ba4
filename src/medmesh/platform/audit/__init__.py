"""The audit trail: records appended with group commit (:mod:`.trail`), linked by a keyed hash
chain (:mod:`.chain`) under keys and checkpoints held outside the database (:mod:`.keys`), and
read back, verified and filtered (:mod:`.reading`).
"""

from medmesh.platform.audit.chain import (
    GENESIS_HASH,
    AuditChainHead,
    AuditEntry,
    SqliteAppender,
    append_batch,
    link,
    record_hash,
)
from medmesh.platform.audit.keys import (
    KEY_BYTES,
    AuditKeys,
    AuditSealing,
    Checkpoint,
    CheckpointFileError,
    CheckpointLog,
    LinkKey,
    audit_sealing,
    checkpoint_path,
    load_audit_keys,
    read_checkpoints,
)
from medmesh.platform.audit.reading import (
    list_records,
    verify_chain,
)
from medmesh.platform.audit.trail import (
    AuditRecord,
    AuditTrail,
    AuditWriteFailed,
    ChainReport,
    audit_database_for,
    audit_database_url,
    ensure_audit_tables,
)

__all__ = [
    "GENESIS_HASH",
    "KEY_BYTES",
    "AuditChainHead",
    "AuditEntry",
    "AuditKeys",
    "AuditRecord",
    "AuditSealing",
    "AuditTrail",
    "AuditWriteFailed",
    "ChainReport",
    "Checkpoint",
    "CheckpointFileError",
    "CheckpointLog",
    "LinkKey",
    "SqliteAppender",
    "append_batch",
    "audit_database_for",
    "audit_database_url",
    "audit_sealing",
    "checkpoint_path",
    "ensure_audit_tables",
    "link",
    "list_records",
    "load_audit_keys",
    "read_checkpoints",
    "record_hash",
    "verify_chain",
]
