"""Envelope encryption of PHI fields, and blind indexes to search them.

Each record gets a fresh 256-bit data key. The data is sealed with AES-256-GCM
under that key; the data key is sealed (wrapped) with AES-256-GCM under a
key-encryption key (KEK) of the :class:`KeyRing`. The blob carries the KEK id,
so rotating the KEK only re-wraps 60 bytes per record (:meth:`KeyRing.rotate`)
and old blobs stay readable while the ring still holds their KEK.

Blob layout (version 1), all lengths in bytes::

    0x01 | len(kid) (1) | kid (ASCII) | wrap nonce (12) | wrapped data key (32 + 16 tag)
         | data nonce (12) | ciphertext + tag (16)

The wrapped key is bound to the version and KEK id (its AAD); the ciphertext is
bound to the version and the caller's ``aad`` (e.g. table, column and row id), so
a blob copied to another row does not decrypt. Any tampering raises
:class:`DecryptionFailed`, whose message never holds plaintext or key material.

:class:`BlindIndex` turns a value into a keyed HMAC-SHA256 token, after
normalising it (Unicode NFKD, accents dropped, case folded, whitespace
collapsed), so equal identifiers and name prefixes can be found without
storing them in clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medmesh.platform.errors import MedmeshError

VERSION: Final = 1
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
_WRAPPED_BYTES: Final = NONCE_BYTES + KEY_BYTES + TAG_BYTES
_KID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class BatchSealer:
    """Seals records under one data key (from :meth:`KeyRing.batch`, with its wrapped form); each
    blob reads like one of :meth:`KeyRing.encrypt`'s (header, wrapped key, nonce, ciphertext)
    and opens with :meth:`KeyRing.decrypt`. AES-GCM's random 96-bit nonces keep one key safe
    far beyond the records of a bulk unit."""

    __slots__ = ("_aead", "_wrapped")

    def __init__(self, wrapped: bytes, data_key: bytes) -> None:
        self._wrapped = wrapped
        self._aead = AESGCM(data_key)

    def encrypt(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        """Seal ``plaintext`` (``aad``: what it must stay bound to, as for the ring)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return self._wrapped + nonce + self._aead.encrypt(nonce, plaintext, _data_aad(aad))


class DecryptionFailed(MedmeshError):
    """A blob that is malformed, tampered with, or sealed under a key not in the ring."""

    status, code = 400, "decryption_failed"


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class KeyRing:
    """Key-encryption keys by id; the first one is active (it seals new blobs)."""

    __slots__ = ("_aead", "_keys", "active_kid")

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a KeyRing needs at least one key")
        self._keys: dict[str, bytes] = {}
        for kid, key in keys:
            if not _KID.fullmatch(kid):
                raise ValueError("key ids are 1-64 characters of A-Z a-z 0-9 . _ -")
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {kid!r} is not {KEY_BYTES} bytes")
            if kid in self._keys:
                raise ValueError(f"key id {kid!r} appears twice")
            self._keys[kid] = bytes(key)
        self.active_kid: str = keys[0][0]
        self._aead = {kid: AESGCM(key) for kid, key in self._keys.items()}

    @classmethod
    def parse(cls, setting: str) -> KeyRing:
        """A ring from a setting ``"kid1:base64url,kid2:base64url"`` (first is active)."""
        keys: list[tuple[str, bytes]] = []
        for item in filter(None, (part.strip() for part in setting.split(","))):
            kid, sep, encoded = item.partition(":")
            if not sep:
                raise ValueError("each key is written kid:base64url")
            try:
                keys.append((kid.strip(), _b64url_decode(encoded.strip())))
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"key {kid.strip()!r} is not valid base64url") from exc
        return cls(keys)

    @classmethod
    def generate(cls, kid: str | None = None) -> KeyRing:
        """A ring of one new random key (``kid`` defaults to a random id)."""
        return cls([(kid or "k" + secrets.token_hex(4), secrets.token_bytes(KEY_BYTES))])

    def to_setting(self) -> str:
        """The ring as a settings string for :meth:`parse` (it holds the keys: a secret)."""
        return ",".join(
            f"{kid}:{base64.urlsafe_b64encode(key).rstrip(b'=').decode()}"
            for kid, key in self._keys.items()
        )

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids, active first."""
        return tuple(self._keys)

    def encrypt(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        """Seal ``plaintext`` under a fresh data key wrapped with the active KEK."""
        return self.batch().encrypt(plaintext, aad)

    def batch(self) -> BatchSealer:
        """A sealer whose blobs share one fresh data key (each with a nonce of its own): for
        the records of one bulk unit, which then cost one data key and one wrap in all."""
        data_key = AESGCM.generate_key(bit_length=256)
        return BatchSealer(self._wrap(self.active_kid, data_key), data_key)

    def decrypt(self, blob: bytes, aad: bytes = b"") -> bytes:
        """The plaintext of ``blob``; raises :class:`DecryptionFailed` when it does not open."""
        _, data_key, body = self._unwrap(blob)
        try:
            return AESGCM(data_key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], _data_aad(aad))
        except InvalidTag:
            raise DecryptionFailed("encrypted value failed authentication") from None

    def kid_of(self, blob: bytes) -> str:
        """The id of the KEK that wraps ``blob``."""
        kid, _ = _parse_header(blob)
        return kid

    def needs_rotation(self, blob: bytes) -> bool:
        """True when ``blob`` is wrapped with a KEK other than the active one."""
        return self.kid_of(blob) != self.active_kid

    def rotate(self, blob: bytes, aad: bytes = b"") -> bytes:
        """``blob`` re-wrapped with the active KEK; the data ciphertext is unchanged.

        The blob is fully decrypted first, so a tampered blob is never re-sealed.
        """
        kid, data_key, body = self._unwrap(blob)
        try:
            AESGCM(data_key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], _data_aad(aad))
        except InvalidTag:
            raise DecryptionFailed("encrypted value failed authentication") from None
        if kid == self.active_kid:
            return blob
        return self._wrap(self.active_kid, data_key) + body

    def _wrap(self, kid: str, data_key: bytes) -> bytes:
        header = _header(kid)
        nonce = secrets.token_bytes(NONCE_BYTES)
        return header + nonce + self._aead[kid].encrypt(nonce, data_key, header)

    def _unwrap(self, blob: bytes) -> tuple[str, bytes, bytes]:
        kid, offset = _parse_header(blob)
        aead = self._aead.get(kid)
        if aead is None:
            raise DecryptionFailed(f"encrypted value uses key {kid!r}, which is not in the ring")
        wrapped = blob[offset : offset + _WRAPPED_BYTES]
        body = blob[offset + _WRAPPED_BYTES :]
        if len(body) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionFailed("encrypted value is truncated")
        try:
            data_key = aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], blob[:offset])
        except InvalidTag:
            raise DecryptionFailed("encrypted value failed authentication") from None
        return kid, data_key, body

    def __repr__(self) -> str:
        return f"KeyRing(active={self.active_kid!r}, kids={self.kids!r})"


def _header(kid: str) -> bytes:
    raw = kid.encode("ascii")
    return bytes((VERSION, len(raw))) + raw


def _data_aad(aad: bytes) -> bytes:
    return bytes((VERSION,)) + aad


def _parse_header(blob: bytes) -> tuple[str, int]:
    if len(blob) < 2 or blob[0] != VERSION:
        raise DecryptionFailed("encrypted value has an unknown format")
    offset = 2 + blob[1]
    try:
        kid = blob[2:offset].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionFailed("encrypted value has an unknown format") from None
    if not _KID.fullmatch(kid) or len(blob) < offset + _WRAPPED_BYTES:
        raise DecryptionFailed("encrypted value has an unknown format")
    return kid, offset


def normalize_text(value: str) -> str:
    """NFKD, combining marks dropped, case folded, whitespace collapsed and trimmed."""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


class BlindIndex:
    """Keyed HMAC-SHA256 tokens of normalised values, for equality and prefix search.

    ``context`` separates fields (an SSN index and a name index made from one
    key give unrelated tokens); exact and prefix tokens are separated too.
    """

    __slots__ = ("_exact_key", "_prefix_key", "normalize")

    def __init__(
        self,
        key: bytes,
        *,
        context: str = "",
        normalize: Callable[[str], str] = normalize_text,
    ) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"blind index keys must be at least {KEY_BYTES} bytes")
        self.normalize = normalize
        base = hmac.new(key, b"medmesh-blind-index:" + context.encode(), hashlib.sha256).digest()
        # Keyed once: each token copies the keyed state instead of deriving the pads again, which
        # costs less (a new Patient needs some 30 tokens; see
        # docs/decisions/0008-phi-envelope-encryption-and-blind-indexes.md).
        self._exact_key = hmac.new(
            hmac.new(base, b"exact", hashlib.sha256).digest(), None, "sha256"
        )
        self._prefix_key = hmac.new(
            hmac.new(base, b"prefix", hashlib.sha256).digest(), None, "sha256"
        )

    def token(self, value: str) -> str:
        """The token of the whole normalised ``value`` (base64url, 43 characters)."""
        return _token(self._exact_key, self.normalize(value))

    def prefix_tokens(self, value: str, min_len: int = 1, max_len: int | None = None) -> list[str]:
        """Tokens of every prefix of the normalised ``value`` from ``min_len`` to ``max_len``
        characters, to store next to the record for starts-with search."""
        if min_len < 1:
            raise ValueError("min_len must be at least 1")
        text = self.normalize(value)
        longest = len(text) if max_len is None else min(len(text), max_len)
        return [_token(self._prefix_key, text[:n]) for n in range(min_len, longest + 1)]

    def prefix_token(self, prefix: str, length: int | None = None) -> str:
        """The token to look up for a starts-with search of ``prefix`` (of its first ``length``
        normalised characters, when given: the prefix token :meth:`prefix_tokens` makes of that
        length for any value starting with ``prefix``)."""
        text = self.normalize(prefix)
        return _token(self._prefix_key, text if length is None else text[:length])

    def __repr__(self) -> str:
        return "BlindIndex(...)"


def _token(keyed: hmac.HMAC, text: str) -> str:
    mac = keyed.copy()
    mac.update(text.encode("utf-8"))
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")
