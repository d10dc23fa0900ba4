import base64
import secrets

import pytest

from medmesh.platform.crypto import BlindIndex, DecryptionFailed, KeyRing, normalize_text
from medmesh.platform.errors import MedmeshError

SSN = b"123-45-6789"
ROW = b"patients.ssn:42"


def _key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def test_round_trip_with_aad() -> None:
    ring = KeyRing.generate("k1")
    blob = ring.encrypt(SSN, ROW)
    assert SSN not in blob
    assert blob[0] == 1
    assert b"k1" in blob[:4]
    assert ring.decrypt(blob, ROW) == SSN
    assert ring.decrypt(ring.encrypt(b""), b"") == b""


def test_every_record_gets_a_fresh_data_key_and_nonce() -> None:
    ring = KeyRing.generate()
    assert ring.encrypt(SSN) != ring.encrypt(SSN)


def test_a_blob_moved_to_another_row_does_not_decrypt() -> None:
    ring = KeyRing.generate()
    blob = ring.encrypt(SSN, ROW)
    with pytest.raises(DecryptionFailed):
        ring.decrypt(blob, b"patients.ssn:43")


@pytest.mark.parametrize("position", [0, 1, 3, 10, 40, 70, 80, -1])
def test_tampering_anywhere_is_detected(position: int) -> None:
    ring = KeyRing.generate("k1")
    blob = bytearray(ring.encrypt(SSN, ROW))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionFailed) as caught:
        ring.decrypt(bytes(blob), ROW)
    assert isinstance(caught.value, MedmeshError)
    assert caught.value.code == "decryption_failed"
    assert "123" not in caught.value.message


@pytest.mark.parametrize(
    "blob", [b"", b"\x01", b"\x02\x02k1" + bytes(80), b"\x01\x02k1" + bytes(10)]
)
def test_malformed_blobs_are_refused(blob: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        KeyRing.generate("k1").decrypt(blob)


def test_swapping_wrapped_keys_between_records_is_detected() -> None:
    ring = KeyRing.generate("k1")
    a, b = ring.encrypt(b"alice"), ring.encrypt(b"bob")
    header_and_key = 2 + 2 + 60
    with pytest.raises(DecryptionFailed):
        ring.decrypt(a[:header_and_key] + b[header_and_key:])


def test_parse_setting_first_key_is_active() -> None:
    ring = KeyRing.parse(f"new:{_key_text()}, old:{_key_text()}")
    assert ring.active_kid == "new"
    assert ring.kids == ("new", "old")
    assert KeyRing.parse(ring.to_setting()).kids == ring.kids
    assert "new" in repr(ring)
    assert ring.to_setting() not in repr(ring)


@pytest.mark.parametrize(
    "setting",
    ["", "nokey", f"k1:{_key_text()[:20]}", f"k1:{_key_text()},k1:{_key_text()}", "bad id:AAAA"],
)
def test_bad_settings_are_refused(setting: str) -> None:
    with pytest.raises(ValueError):
        KeyRing.parse(setting)


def test_rotation_rewraps_under_the_active_key() -> None:
    old = KeyRing.parse(f"old:{_key_text()}")
    blob = old.encrypt(SSN, ROW)
    ring = KeyRing.parse(f"new:{_key_text()},{old.to_setting()}")

    assert ring.needs_rotation(blob)
    assert ring.decrypt(blob, ROW) == SSN  # old blobs stay readable
    rotated = ring.rotate(blob, ROW)
    assert not ring.needs_rotation(rotated)
    assert ring.kid_of(rotated) == "new"
    assert rotated.endswith(blob[-(12 + len(SSN) + 16) :])  # data ciphertext kept as is
    assert KeyRing.parse(ring.to_setting().split(",")[0]).decrypt(rotated, ROW) == SSN
    assert ring.rotate(rotated, ROW) == rotated


def test_a_batch_seals_under_one_data_key_with_a_nonce_for_each_record() -> None:
    ring = KeyRing.parse(f"k1:{_key_text()}")
    batch = ring.batch()
    alice, bob = batch.encrypt(b"alice", b"Patient/a/1"), batch.encrypt(b"bob", b"Patient/b/1")
    other = ring.batch().encrypt(b"alice", b"Patient/a/1")
    wrapped, nonce = slice(0, 2 + 2 + 60), slice(64, 64 + 12)

    assert ring.decrypt(alice, b"Patient/a/1") == b"alice"
    assert ring.decrypt(bob, b"Patient/b/1") == b"bob"
    assert alice[wrapped] == bob[wrapped]  # one data key, wrapped once
    assert alice[nonce] != bob[nonce]
    assert other[wrapped] != alice[wrapped]  # the next batch draws its own
    with pytest.raises(DecryptionFailed):
        ring.decrypt(alice, b"Patient/b/1")  # still bound to its own row
    rotating = KeyRing.parse(f"k2:{_key_text()},{ring.to_setting()}")
    rotated = rotating.rotate(bob, b"Patient/b/1")
    assert rotating.kid_of(rotated) == "k2"
    assert rotated.endswith(bob[64:])  # the record's nonce and ciphertext kept
    assert KeyRing.parse(rotating.to_setting().split(",")[0]).decrypt(rotated, b"Patient/b/1") == (
        b"bob"
    )
    assert ring.decrypt(alice, b"Patient/a/1") == b"alice"  # its batch mate is untouched


def test_rotation_refuses_tampered_blobs() -> None:
    old = KeyRing.parse(f"old:{_key_text()}")
    blob = bytearray(old.encrypt(SSN, ROW))
    blob[-1] ^= 1
    ring = KeyRing.parse(f"new:{_key_text()},{old.to_setting()}")
    with pytest.raises(DecryptionFailed):
        ring.rotate(bytes(blob), ROW)


def test_a_retired_key_cannot_decrypt() -> None:
    blob = KeyRing.generate("gone").encrypt(SSN)
    with pytest.raises(DecryptionFailed, match="not in the ring"):
        KeyRing.generate("k2").decrypt(blob)


def test_blind_index_normalises_before_hashing() -> None:
    index = BlindIndex(secrets.token_bytes(32))
    assert index.token("José  Núñez") == index.token(" jose nunez")
    assert index.token("STRASSE") == index.token("straße")
    assert index.token("jose") != index.token("josé x")
    assert len(index.token("x")) == 43
    assert normalize_text("  \uff21\uff4e\uff4e\tMARIE ")  # full-width "Ann" == "ann marie"


def test_blind_index_depends_on_key_and_context() -> None:
    key = secrets.token_bytes(32)
    assert BlindIndex(key).token("a") == BlindIndex(key).token("a")
    assert BlindIndex(key).token("a") != BlindIndex(secrets.token_bytes(32)).token("a")
    assert BlindIndex(key, context="ssn").token("a") != BlindIndex(key, context="name").token("a")
    with pytest.raises(ValueError, match="32 bytes"):
        BlindIndex(b"short")


def test_prefix_tokens_find_names_by_their_start() -> None:
    index = BlindIndex(secrets.token_bytes(32), context="family-name")
    stored = set(index.prefix_tokens("Müller", min_len=2))
    assert len(stored) == 5
    assert index.prefix_token("MU") in stored
    assert index.prefix_token("mulle") in stored
    assert index.prefix_token("m") not in stored
    assert index.prefix_token("mx") not in stored
    assert index.token("muller") not in stored  # exact and prefix tokens are unrelated
    assert len(index.prefix_tokens("Müller", max_len=3)) == 3
    assert index.prefix_tokens("ab", min_len=3) == []


def test_custom_normalisation_hook() -> None:
    index = BlindIndex(secrets.token_bytes(32), normalize=lambda v: "".join(filter(str.isdigit, v)))
    assert index.token("123-45-6789") == index.token("123 45 6789")


def test_blind_index_tokens_are_the_documented_hmac_chain() -> None:
    # Stored index rows must keep matching: a token is
    # b64url(HMAC(HMAC(HMAC(key, "medmesh-blind-index:" + context), "exact"|"prefix"), text)).
    import base64
    import hashlib
    import hmac

    key = bytes(range(32))

    def mac(k: bytes, m: bytes) -> bytes:
        return hmac.new(k, m, hashlib.sha256).digest()

    base = mac(key, b"medmesh-blind-index:family")
    exact, prefix = mac(base, b"exact"), mac(base, b"prefix")

    def b64(d: bytes) -> str:
        return base64.urlsafe_b64encode(d).rstrip(b"=").decode()

    index = BlindIndex(key, context="family")
    assert index.token("Müller") == b64(mac(exact, normalize_text("Müller").encode()))
    assert index.prefix_tokens("Ann") == [b64(mac(prefix, p.encode())) for p in ("a", "an", "ann")]
    assert index.prefix_token("AN") == b64(mac(prefix, b"an"))
    # The keyed state is copied, never consumed: the same input gives the same token again.
    assert index.token("Müller") == index.token("Müller")
