import uuid

from aod.uids import uid7


def test_uid7_is_a_version_7_rfc_9562_uuid_carrying_its_millisecond() -> None:
    ns = 1_795_000_000_123_456_789
    uid = uid7(ns)
    parsed = uuid.UUID(hex=uid)
    assert len(uid) == 32
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert int(uid[:12], 16) == ns // 1_000_000


def test_uid7_sorts_by_time_and_never_repeats() -> None:
    later_first = [uid7(1_795_000_000_000_000_000 + step * 1_000_000) for step in range(200, 0, -1)]
    assert sorted(later_first) == list(reversed(later_first))
    same_ms = {uid7(1_795_000_000_000_000_000) for _ in range(10_000)}
    assert len(same_ms) == 10_000
