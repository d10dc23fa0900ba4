"""What anchors an audit trail outside its database: HMAC keys and signed checkpoints.

Each record's link is ``HMAC-SHA256(link key, prev_hash || canonical fields)`` under a key the
database does not hold (``MEDMESH_<SVC>_AUDIT_KEYS``, ``kid:base64url,...``, the first one
active, the others kept to verify what they linked), so whoever can write the database cannot
recompute the chain after an edit. Removing the newest records and moving the head still leaves a
valid chain; that is what the checkpoints catch: every ``AUDIT_CHECKPOINT_RECORDS`` records or
``AUDIT_CHECKPOINT_SECONDS`` seconds the writer appends a signed line ``{service, seq, records,
head, at, kid, sig}`` to a file outside the database (``AUDIT_CHECKPOINT_FILE``, fsynced) and
logs it, and ``medmesh audit verify`` checks the chain against every line.

The link and checkpoint keys are derived from each configured key with separate labels, so a
record's link can never pass as a checkpoint signature.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from medmesh.platform.config import ServiceSettings
from medmesh.platform.logging import get_logger

__all__ = [
    "AuditKeys",
    "AuditSealing",
    "Checkpoint",
    "CheckpointLog",
    "LinkKey",
    "audit_sealing",
    "load_audit_keys",
    "read_checkpoints",
]

log = get_logger("medmesh.platform.audit")

KEY_BYTES = 32
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_LINK_LABEL = b"medmesh-audit-link"
_CHECKPOINT_LABEL = b"medmesh-audit-checkpoint"


def _derive(key: bytes, label: bytes) -> bytes:
    return hmac.new(key, label, hashlib.sha256).digest()


class LinkKey:
    """The key that links records: its id and a prepared HMAC-SHA256 (copied per record)."""

    __slots__ = ("_base", "_key", "kid")

    def __init__(self, kid: str, key: bytes) -> None:
        self.kid = kid
        self._key = key
        self._base = hmac.new(_derive(key, _LINK_LABEL), digestmod=hashlib.sha256)

    def __reduce__(self) -> tuple[type[LinkKey], tuple[str, bytes]]:
        # Pickled only to the service's own forked workers (phi's import writers), over a pipe.
        return (LinkKey, (self.kid, self._key))

    def mac(self, data: bytes) -> str:
        """The hex HMAC of ``data``."""
        keyed = self._base.copy()
        keyed.update(data)
        return keyed.hexdigest()

    def __repr__(self) -> str:
        return f"LinkKey(kid={self.kid!r})"


class AuditKeys:
    """The audit chain's keys by id; the first one is active (it links new records)."""

    __slots__ = ("_checkpoint", "_links", "_raw", "active_kid")

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("the audit trail needs at least one key")
        self._links: dict[str, LinkKey] = {}
        self._checkpoint: dict[str, bytes] = {}
        self._raw: dict[str, bytes] = {}
        for kid, key in keys:
            if not _KID.fullmatch(kid):
                raise ValueError("audit key ids are 1-64 characters of A-Z a-z 0-9 . _ -")
            if len(key) < KEY_BYTES:
                raise ValueError(f"audit key {kid!r} is shorter than {KEY_BYTES} bytes")
            if kid in self._links:
                raise ValueError(f"audit key id {kid!r} appears twice")
            self._raw[kid] = bytes(key)
            self._links[kid] = LinkKey(kid, key)
            self._checkpoint[kid] = _derive(key, _CHECKPOINT_LABEL)
        self.active_kid: str = keys[0][0]

    @classmethod
    def parse(cls, setting: str) -> AuditKeys:
        """Keys from a setting ``"kid1:base64url,kid2:base64url"`` (the first is active)."""
        keys: list[tuple[str, bytes]] = []
        for item in filter(None, (part.strip() for part in setting.split(","))):
            kid, sep, encoded = item.partition(":")
            if not sep:
                raise ValueError("each audit key is written kid:base64url")
            encoded = encoded.strip()
            try:
                keys.append(
                    (kid.strip(), base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
                )
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"audit key {kid.strip()!r} is not valid base64url") from exc
        return cls(keys)

    @classmethod
    def generate(cls, kid: str | None = None) -> AuditKeys:
        """One new random key (``kid`` defaults to a random id)."""
        return cls([(kid or "a" + secrets.token_hex(4), secrets.token_bytes(KEY_BYTES))])

    def to_setting(self) -> str:
        """The keys as a setting for :meth:`parse` (it holds the keys: a secret)."""
        return ",".join(
            f"{kid}:{base64.urlsafe_b64encode(key).rstrip(b'=').decode()}"
            for kid, key in self._raw.items()
        )

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids, active first."""
        return tuple(self._links)

    @property
    def active(self) -> LinkKey:
        """The key new records are linked with."""
        return self._links[self.active_kid]

    def link_key(self, kid: str) -> LinkKey | None:
        """The link key ``kid``, None when it is not configured."""
        return self._links.get(kid)

    def sign_checkpoint(self, kid: str, fields: dict[str, Any]) -> str:
        """The hex HMAC of a checkpoint's fields (canonical JSON) under ``kid``."""
        canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        return hmac.new(self._checkpoint[kid], canonical, hashlib.sha256).hexdigest()

    def has(self, kid: str) -> bool:
        return kid in self._links

    def __repr__(self) -> str:
        return f"AuditKeys(kids={self.kids!r})"


def load_audit_keys(settings: ServiceSettings, *, create: bool = True) -> AuditKeys | None:
    """The keys from ``AUDIT_KEYS``, or (development) from ``<var_dir>/<service>-audit.key``.

    In production an empty setting is refused: a trail linked with a key stored next to the
    database proves nothing. ``create=False`` (a verifying command) reads the development file
    but never writes one, and answers None when there is none.
    """
    if settings.audit_keys:
        return AuditKeys.parse(settings.audit_keys)
    name = settings.service_name.upper()
    if settings.environment == "production":
        raise RuntimeError(f"MEDMESH_{name}_AUDIT_KEYS must be set in production")
    path = Path(settings.var_dir) / f"{settings.service_name}-audit.key"
    if path.exists():
        return AuditKeys.parse(path.read_text().strip())
    if not create:
        return None
    keys = AuditKeys.generate("dev1")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(keys.to_setting())
    return keys


def checkpoint_path(settings: ServiceSettings) -> Path:
    """``AUDIT_CHECKPOINT_FILE``, or ``<var_dir>/<service>-audit-checkpoints.jsonl``."""
    if settings.audit_checkpoint_file:
        return Path(settings.audit_checkpoint_file)
    return Path(settings.var_dir) / f"{settings.service_name}-audit-checkpoints.jsonl"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One line of a checkpoint file (``line`` counts from 1)."""

    line: int
    service: str
    seq: int
    records: int
    head: str
    at: str
    kid: str
    sig: str

    def fields(self) -> dict[str, Any]:
        """What the signature covers."""
        return {
            "service": self.service,
            "seq": self.seq,
            "records": self.records,
            "head": self.head,
            "at": self.at,
            "kid": self.kid,
        }


class CheckpointLog:
    """Appends signed checkpoints of a trail's head to a file (fsynced) and the log."""

    def __init__(
        self, path: Path, keys: AuditKeys, *, every_records: int = 1000, every_seconds: float = 60.0
    ) -> None:
        self.path = path
        self.keys = keys
        self.every_records = max(1, every_records)
        self.every_seconds = every_seconds

    def checkpoint(self, service: str, seq: int, head: str) -> dict[str, Any]:
        """The signed checkpoint of ``service``'s chain at record ``seq`` whose hash is ``head``."""
        fields: dict[str, Any] = {
            "service": service,
            "seq": seq,
            "records": seq,
            "head": head,
            "at": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "kid": self.keys.active_kid,
        }
        return {**fields, "sig": self.keys.sign_checkpoint(self.keys.active_kid, fields)}

    async def write(self, service: str, seq: int, head: str) -> None:
        """Append and fsync one checkpoint (off the loop), then log it."""
        signed = self.checkpoint(service, seq, head)
        await asyncio.to_thread(self._append, orjson.dumps(signed) + b"\n")
        log.info(
            "audit_checkpoint",
            seq=signed["seq"],
            records=signed["records"],
            head=signed["head"],
            at=signed["at"],
            kid=signed["kid"],
            sig=signed["sig"],
        )

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True, slots=True)
class AuditSealing:
    """A trail's keys and, when it writes them, its checkpoint log."""

    keys: AuditKeys
    checkpoints: CheckpointLog | None = None


def audit_sealing(settings: ServiceSettings) -> AuditSealing:
    """The keys and checkpoint log a service's settings ask for (see :func:`load_audit_keys`)."""
    keys = load_audit_keys(settings)
    assert keys is not None  # created when missing
    log_file = CheckpointLog(
        checkpoint_path(settings),
        keys,
        every_records=settings.audit_checkpoint_records,
        every_seconds=settings.audit_checkpoint_seconds,
    )
    return AuditSealing(keys, log_file)


class CheckpointFileError(ValueError):
    """A checkpoint file line that is not a checkpoint."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"checkpoint line {line}: {reason}")
        self.line = line


_FIELDS = {
    "service": str,
    "seq": int,
    "records": int,
    "head": str,
    "at": str,
    "kid": str,
    "sig": str,
}


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """Every checkpoint of a file in order (an absent file has none).

    Raises :class:`CheckpointFileError` naming the first line that is not a checkpoint.
    """
    if not path.exists():
        return []
    found: list[Checkpoint] = []
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise CheckpointFileError(number, "is not JSON") from None
            if not isinstance(data, dict) or any(
                type(data.get(name)) is not kind for name, kind in _FIELDS.items()
            ):
                raise CheckpointFileError(number, "is not a checkpoint")
            found.append(Checkpoint(line=number, **{name: data[name] for name in _FIELDS}))
    return found
