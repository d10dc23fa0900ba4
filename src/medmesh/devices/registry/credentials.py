"""Device keys: 32 random bytes shown once, kept only as their SHA-256.

A key is high-entropy random, so a fast hash is as safe as a slow one (no dictionary to try)
and lets ingest find the key by its hash with one index lookup.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "mdk_"


def new_device_key() -> str:
    """A fresh device key (``mdk_`` and 43 base64url characters)."""
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """What is stored of ``key`` and what ingest looks it up by."""
    return hashlib.sha256(key.encode()).hexdigest()
