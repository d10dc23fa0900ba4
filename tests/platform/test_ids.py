import time
import uuid

from medmesh.platform.ids import uuid7_hex


def test_a_uuid7_is_a_valid_version_7_uuid() -> None:
    value = uuid7_hex()
    parsed = uuid.UUID(hex=value)
    assert len(value) == 32
    assert value == value.lower()
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_the_first_48_bits_are_the_unix_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7_hex()
    after = time.time_ns() // 1_000_000
    assert before <= int(value[:12], 16) <= after
    assert uuid7_hex(now_ms=0x0123_4567_89AB).startswith("0123456789ab7")


def test_ids_sort_by_creation_time_and_do_not_repeat() -> None:
    earlier = [uuid7_hex(now_ms=1_700_000_000_000) for _ in range(5_000)]
    later = [uuid7_hex(now_ms=1_700_000_000_001) for _ in range(5_000)]
    assert max(earlier) < min(later)
    assert len(set(earlier + later)) == 10_000
    # 74 random bits: the ids of one millisecond differ well beyond the timestamp.
    assert len({value[13:] for value in earlier}) == 5_000
