"""Bucketing and the rule language of the Python flag client, without a database.

The SQL side is checked against the same references in tests/db/test_flags.py.
"""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import mmh3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from platformdb.sdk import flags
from platformdb.sdk.flags import Flag, rule_matches, semver_cmp


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    """An independent transcription of MurmurHash3_x86_32 (SMHasher), to check mmh3's use."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    h = seed & mask
    n = len(data) // 4 * 4
    for i in range(0, n, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = rotl((k * c1) & mask, 15) * c2 & mask
        h = (rotl(h ^ k, 13) * 5 + 0xE6546B64) & mask
    tail = data[n:]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if len(tail) >= 1:
        k ^= tail[0]
        h ^= rotl((k * c1) & mask, 15) * c2 & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    return h ^ (h >> 16)


# Published MurmurHash3_x86_32 vectors (SMHasher / Wikipedia)
HASH_VECTORS = [
    (b"", 0, 0x00000000),
    (b"", 1, 0x514E28B7),
    (b"", 0xFFFFFFFF, 0x81F16F39),
    (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
    (b"aaaa", 0x9747B28C, 0x5A97808A),
    (b"abcd", 0x9747B28C, 0xF0478627),
    (b"Hello, world!", 1234, 0xFAF6CDB3),
    (b"The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723),
]


@pytest.mark.parametrize(("data", "seed", "expected"), HASH_VECTORS)
def test_reference_and_mmh3_agree_with_published_vectors(data: bytes, seed: int, expected: int) -> None:
    assert murmur3_x86_32(data, seed) == expected
    assert mmh3.hash(data, seed, signed=False) == expected


def test_unleash_client_specification_vectors() -> None:
    # Unleash client-specification: normalizedValue(userId, groupId) for gradual rollout
    assert flags.bucket("AB12A", "122") == 23
    assert flags.bucket("AB12A", "155") == 100


@given(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
)
def test_bucket_is_murmur3_of_the_utf8_bytes_unsigned_mod_100_plus_1(key: str, subject: str) -> None:
    data = f"{key}:{subject}".encode()
    assert flags.bucket(key, subject) == murmur3_x86_32(data) % 100 + 1


def test_bucket_covers_every_tail_length_and_multibyte_characters() -> None:
    rng = random.Random(7)
    alphabet = "aZ09-_:é€𝄞漢ß\u0301 "  # 1-, 2-, 3- and 4-byte UTF-8
    for length in range(0, 33):
        for _ in range(20):
            subject = "".join(rng.choice(alphabet) for _ in range(length))
            data = f"k:{subject}".encode()
            assert flags.bucket("k", subject) == murmur3_x86_32(data) % 100 + 1


def test_buckets_are_uniform_over_user_ids() -> None:
    rng = random.Random(11)
    counts = [0] * 101
    n = 100_000
    for _ in range(n):
        counts[flags.bucket("uniformity", str(uuid.UUID(int=rng.getrandbits(128))))] += 1
    assert counts[0] == 0
    expected = n / 100
    chi2 = sum((c - expected) ** 2 / expected for c in counts[1:])
    assert chi2 < 150, chi2  # 99 degrees of freedom: p < 0.002 beyond 150


def _flag(strategy: str, percentage: int = 0, **kw: object) -> Flag:
    return Flag(
        key=str(kw.get("key", "f")),
        environment="production",
        name="f",
        description=None,
        enabled=True,
        rollout_strategy=strategy,
        rollout_percentage=percentage,
        target_users=frozenset(kw.get("target_users", ())),  # type: ignore[arg-type]
        conditions=list(kw.get("conditions", [])),  # type: ignore[call-overload]
        secret=False,
        version=1,
        prefix=f"{kw.get('key', 'f')}:",
        # what the data migration (feature_flag_legacy_strategies) makes of a percentage rollout
        strategies=[
            {
                "name": "flexibleRollout",
                "parameters": {"rollout": str(percentage), "stickiness": "userId", "groupId": kw.get("key", "f")},
            }
        ],
    )


def test_zero_percent_enables_nobody_and_hundred_everybody_fifty_half() -> None:
    rng = random.Random(3)
    users = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(10_000)]
    assert not any(_flag("percentage", 0).decide(u, None, "production") for u in users)
    assert all(_flag("percentage", 100).decide(u, None, "production") for u in users)
    on = sum(_flag("percentage", 50).decide(u, None, "production") for u in users)
    assert 4800 <= on <= 5200
    # no user: off, also at 100% (Unleash: user-id stickiness without a user id is off)
    assert not _flag("percentage", 99).decide(None, None, "production")
    assert not _flag("percentage", 100).decide(None, None, "production")


def test_rollout_is_sticky_as_the_percentage_grows() -> None:
    rng = random.Random(5)
    users = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(10_000)]
    previous: set[str] = set()
    for p in range(0, 101, 5):
        now = {u for u in users if _flag("percentage", p).decide(u, None, "production")}
        assert previous <= now, f"someone lost the feature going to {p}%"
        previous = now
    assert len(previous) == len(users)


def test_semver_precedence_follows_semver_2() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0-1",
        "2.0.0-9",
        "2.0.0-10",
        "2.0.0--a",
        "2.0.0-A",
        "2.0.0-a",
        "2.0.0",
    ]  # the example of semver.org §11, extended: numeric below alphanumeric, ASCII order
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            assert semver_cmp(a, b) == (i > j) - (i < j), (a, b)
    assert semver_cmp("1.0.0+build.5", "1.0.0+other") == 0
    for bad in ("1.0", "01.0.0", "1.0.0-", "1.0.0-01", "v1.0.0", "1.0.0 ", "1.0.0-é"):
        assert semver_cmp(bad, "1.0.0") is None, bad
    assert semver_cmp("1.0.0", "1." + "0" * 300 + ".0") is None  # longer than 256


def test_numbers_are_json_numbers_or_plain_decimal_strings() -> None:
    assert flags.as_number(3) == 3
    assert flags.as_number(0.1) == Decimal("0.1")
    assert flags.as_number("-12.50") == Decimal("-12.5")
    for not_a_number in (True, False, None, "1e3", " 1", "1.", ".5", "١٢", float("nan"), [], {}):
        assert flags.as_number(not_a_number) is None, not_a_number


CTX = {
    "country": "RW",
    "app_version": "2.10.0",
    "age": 30,
    "beta": True,
    "phone": "+250788123456",
    "one": 1,
    "ratio": 0.25,
    "build": "0042",
    "empty": "",
}

# (rule, expected) over CTX; tests/db/test_flags.py runs the same cases through SQL
RULE_CASES: list[tuple[object, bool]] = [
    ({"attribute": "country", "operator": "in", "values": ["RW", "UG"]}, True),
    ({"attribute": "country", "operator": "in", "values": ["KE"]}, False),
    ({"attribute": "country", "operator": "in", "values": []}, False),
    ({"attribute": "country", "operator": "not_in", "values": ["KE"]}, True),
    ({"attribute": "country", "operator": "not_in", "values": ["RW"]}, False),
    ({"attribute": "missing", "operator": "not_in", "values": ["KE"]}, True),
    ({"attribute": "missing", "operator": "in", "values": ["KE"]}, False),
    ({"attribute": "country", "operator": "in", "values": ["rw"]}, False),  # case-sensitive
    ({"attribute": "beta", "operator": "in", "values": ["true"]}, True),
    ({"attribute": "beta", "operator": "in", "values": [True]}, True),
    ({"attribute": "beta", "operator": "not_in", "values": [False]}, True),
    ({"attribute": "age", "operator": "in", "values": ["30", 30]}, False),  # numbers: no string form
    ({"attribute": "age", "operator": "not_in", "values": ["30"]}, True),
    ({"attribute": "phone", "operator": "starts_with", "values": ["+25078"]}, True),
    ({"attribute": "phone", "operator": "starts_with", "values": ["25078"]}, False),
    ({"attribute": "phone", "operator": "ends_with", "values": ["456", "999"]}, True),
    ({"attribute": "phone", "operator": "ends_with", "values": ["+250788123456"]}, True),
    ({"attribute": "phone", "operator": "ends_with", "values": ["0+250788123456"]}, False),
    ({"attribute": "phone", "operator": "ends_with", "values": ["45"]}, False),
    ({"attribute": "phone", "operator": "contains", "values": ["8812"]}, True),
    ({"attribute": "phone", "operator": "contains", "values": ["0000"]}, False),
    ({"attribute": "phone", "operator": "contains", "values": [""]}, True),
    ({"attribute": "empty", "operator": "starts_with", "values": [""]}, True),
    ({"attribute": "empty", "operator": "ends_with", "values": ["", "x"]}, True),
    ({"attribute": "age", "operator": "contains", "values": ["3"]}, False),
    ({"attribute": "beta", "operator": "starts_with", "values": ["tr"]}, True),
    ({"attribute": "age", "operator": "num_gte", "value": 18}, True),
    ({"attribute": "age", "operator": "num_lt", "value": "18"}, False),
    ({"attribute": "age", "operator": "num_eq", "value": 30.0}, True),
    ({"attribute": "age", "operator": "num_lte", "value": 30}, True),
    ({"attribute": "age", "operator": "num_gt", "value": 30}, False),
    ({"attribute": "ratio", "operator": "num_eq", "value": "0.25"}, True),
    ({"attribute": "build", "operator": "num_eq", "value": 42}, True),
    ({"attribute": "one", "operator": "num_eq", "value": 1}, True),
    ({"attribute": "beta", "operator": "num_eq", "value": 1}, False),  # a boolean is no number
    ({"attribute": "country", "operator": "num_eq", "value": 1}, False),
    ({"attribute": "age", "operator": "num_eq", "value": True}, False),
    ({"attribute": "app_version", "operator": "semver_gte", "value": "2.9.0"}, True),
    ({"attribute": "app_version", "operator": "semver_gt", "value": "2.10.0-rc.1"}, True),
    ({"attribute": "app_version", "operator": "semver_lt", "value": "2.10.0"}, False),
    ({"attribute": "app_version", "operator": "semver_lte", "value": "2.10.0"}, True),
    ({"attribute": "app_version", "operator": "semver_eq", "value": "2.10.0+ios"}, True),
    ({"attribute": "age", "operator": "semver_eq", "value": "30.0.0"}, False),
    ({"attribute": "country", "operator": "in", "values": ["RW"], "negate": True}, False),
    ({"attribute": "missing", "operator": "num_gt", "value": 1, "negate": True}, True),
    ({"attribute": "app_version", "operator": "semver_gt", "value": "9.0.0", "negate": True}, True),
    ({"attribute": "country", "operator": "in", "values": ["RW"], "negate": "true"}, True),
    ({"attribute": "country", "operator": "in", "values": ["RW"], "negate": 1}, True),
    ({"attribute": "country", "operator": "in", "values": ["RW"], "negate": False}, True),
    # unknown operators and malformed rules are false, negated or not
    ({"attribute": "country", "operator": "regex", "values": ["R."]}, False),
    ({"attribute": "country", "operator": "regex", "values": ["R."], "negate": True}, False),
    ({"attribute": "country", "operator": "IN", "values": ["RW"]}, False),
    ({"attribute": "country", "operator": "in", "values": "RW"}, False),
    ({"attribute": "country", "operator": "in", "values": "RW", "negate": True}, False),
    ({"attribute": "country", "operator": "in"}, False),
    ({"attribute": "age", "operator": "num_gt", "value": "lots", "negate": True}, False),
    ({"attribute": "age", "operator": "num_gt", "negate": True}, False),
    ({"attribute": "app_version", "operator": "semver_gt", "value": "2.x"}, False),
    ({"attribute": "app_version", "operator": "semver_gt", "value": 2, "negate": True}, False),
    ({"attribute": 1, "operator": "in", "values": ["RW"]}, False),
    ({"operator": "in", "values": ["RW"]}, False),
    ({"attribute": "country", "operator": None, "values": ["RW"]}, False),
    ("country in RW", False),
    (None, False),
]


@pytest.mark.parametrize(("rule", "expected"), RULE_CASES)
def test_rule_language(rule: object, expected: bool) -> None:
    assert rule_matches(rule, CTX) is expected


def test_conditions_all_must_match_and_empty_matches_nobody() -> None:
    a = {"attribute": "country", "operator": "in", "values": ["RW"]}
    b = {"attribute": "age", "operator": "num_gt", "value": 40}
    assert flags.conditions_match([a], CTX)
    assert not flags.conditions_match([a, b], CTX)
    assert not flags.conditions_match([], CTX)
    assert not flags.conditions_match({"all": [a]}, CTX)


def test_context_cannot_override_the_built_in_user_and_environment() -> None:
    user = str(uuid.uuid4())
    ctx = flags.condition_context({"user_id": "someone-else", "environment": "development", "x": 1}, user, "staging")
    assert ctx == {"x": 1, "user_id": user, "environment": "staging"}
    assert "user_id" not in flags.condition_context({"user_id": "forged"}, None, "production")


def test_user_ids_are_canonicalised_like_postgresql() -> None:
    u = uuid.uuid4()
    assert flags.canonical_user(str(u).upper()) == str(u)
    assert flags.canonical_user("{" + str(u) + "}") == str(u)
    assert flags.canonical_user(u.hex) == str(u)
    with pytest.raises(flags.InvalidInput):
        flags.canonical_user("not-a-uuid")
