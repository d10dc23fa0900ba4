"""PHI at rest: stored resources are encrypted, searchable identifiers are blind-indexed.

Every stored version is an AES-256-GCM envelope (``platform.crypto.KeyRing``, a data
key per record or per bulk unit, its key id in the blob) bound to ``type/id/version`` as
associated data, so a body copied onto another row does not decrypt. Names, identifiers,
phone numbers, e-mail addresses and postal codes are searched through keyed
HMAC-SHA256 tokens (``platform.crypto.BlindIndex``): the database holds no
direct identifier in the clear.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import orjson

from medmesh.phi.config import PhiSettings
from medmesh.phi.fhir import jsontext
from medmesh.platform.crypto import BatchSealer, BlindIndex, KeyRing


class PhiProtection:
    def __init__(self, keys: KeyRing, blind_index: BlindIndex) -> None:
        self.keys = keys
        self.blind_index = blind_index

    @staticmethod
    def _aad(resource_type: str, resource_id: str, version: int) -> bytes:
        return f"{resource_type}/{resource_id}/{version}".encode()

    def seal(
        self,
        resource: dict[str, object],
        resource_type: str,
        resource_id: str,
        version: int,
        batch: BatchSealer | None = None,
    ) -> bytes:
        """The sealed body of a version (``batch``: the data key of the bulk unit it is in;
        without one, a key of its own)."""
        sealer = self.keys if batch is None else batch
        return sealer.encrypt(
            jsontext.dumps(resource), aad=self._aad(resource_type, resource_id, version)
        )

    def open(
        self, blob: bytes, resource_type: str, resource_id: str, version: int
    ) -> dict[str, object]:
        data = self.keys.decrypt(blob, aad=self._aad(resource_type, resource_id, version))
        value: dict[str, object] = jsontext.loads(data)
        return value

    def reseal(
        self, blob: bytes, resource_type: str, resource_id: str, version: int
    ) -> bytes | None:
        """The blob re-wrapped under the active key, or None when it already is."""
        if not self.keys.needs_rotation(blob):
            return None
        return self.keys.rotate(blob, aad=self._aad(resource_type, resource_id, version))


def load_protection(settings: PhiSettings) -> PhiProtection:
    """Keys from settings, or (development) from ``var/phi-keys.key``, created on first use."""
    keys_setting, index_key = settings.encryption_keys, settings.blind_index_key
    if not keys_setting or not index_key:
        if settings.environment == "production":
            raise RuntimeError(
                "MEDMESH_PHI_ENCRYPTION_KEYS and MEDMESH_PHI_BLIND_INDEX_KEY must be set in production"
            )
        path = Path(settings.var_dir) / "phi-keys.key"
        if path.exists():
            stored = orjson.loads(path.read_bytes())
        else:
            stored = {
                "encryption_keys": KeyRing.generate().to_setting(),
                "blind_index_key": base64.urlsafe_b64encode(secrets.token_bytes(32))
                .decode()
                .rstrip("="),
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_bytes(orjson.dumps(stored))
        keys_setting = keys_setting or stored["encryption_keys"]
        index_key = index_key or stored["blind_index_key"]
    raw = base64.urlsafe_b64decode(index_key + "=" * (-len(index_key) % 4))
    return PhiProtection(KeyRing.parse(keys_setting), BlindIndex(raw, context="medmesh-phi"))
