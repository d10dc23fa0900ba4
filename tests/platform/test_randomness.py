import os

from medmesh.platform.crypto import KeyRing
from medmesh.platform.ids import uuid7_hex
from medmesh.platform.randomness import RANDOM_BYTES, random_bytes


def test_bytes_read_ahead_are_handed_out_once() -> None:
    taken = [random_bytes(12) for _ in range(3 * RANDOM_BYTES // 12)]
    assert {len(one) for one in taken} == {12}
    assert len(set(taken)) == len(taken)
    assert len(random_bytes(2 * RANDOM_BYTES)) == 2 * RANDOM_BYTES  # more than is read ahead


def test_sealed_records_of_one_batch_have_nonces_of_their_own() -> None:
    ring = KeyRing.generate("k1")
    sealer = ring.batch()
    blobs = [sealer.encrypt(b"same text") for _ in range(1000)]
    assert len(set(blobs)) == 1000
    assert {ring.decrypt(blob) for blob in blobs} == {b"same text"}


def test_a_forked_child_does_not_reuse_its_parents_random_bytes() -> None:
    uuid7_hex()  # the parent has bytes read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then exit at once
        os.close(read)
        os.write(write, "".join(uuid7_hex(now_ms=0) for _ in range(4)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    parent = "".join(uuid7_hex(now_ms=0) for _ in range(4))
    assert len(child) == len(parent) == 128
    assert child != parent
