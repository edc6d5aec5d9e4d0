"""The cluster-key seal on internal records: pure seal and check."""

import pytest

from processors.seal import SEAL_HEADER, canonical, is_sealed, seal, seal_header, without_seal

KEY = b"cluster-key-for-tests-0123456789"
TOPIC = "sy.settlements"
VALUE = b'{"tenant": "initech", "actual_usd": 0.0001}'


def headers() -> list[tuple[str, bytes]]:
    return [("traceparent", b"00-abc-def-01"), seal_header(KEY, TOPIC, b"initech", VALUE)]


def test_a_sealed_record_checks_with_headers_as_pairs_or_as_a_mapping() -> None:
    assert is_sealed(KEY, TOPIC, b"initech", VALUE, headers())
    assert is_sealed(KEY, TOPIC, b"initech", VALUE, dict(headers()))
    assert headers()[1][0] == SEAL_HEADER == "sy-seal"
    assert len(seal(KEY, TOPIC, b"initech", VALUE)) == 64


@pytest.mark.parametrize(
    ("key", "topic", "record_key", "value"),
    [
        (KEY, TOPIC, b"initech", VALUE.replace(b"0.0001", b"4.9999")),  # tampered value
        (b"another-cluster-key-0123456789ab", TOPIC, b"initech", VALUE),  # wrong key
        (KEY, "sy.dispatch", b"initech", VALUE),  # copied to another topic
        (KEY, TOPIC, b"acme", VALUE),  # another record key
        (KEY, TOPIC, None, VALUE),  # key dropped
    ],
)
def test_a_seal_fails_for_any_other_key_topic_record_key_or_value(
    key: bytes, topic: str, record_key: bytes | None, value: bytes
) -> None:
    assert not is_sealed(key, topic, record_key, value, headers())


@pytest.mark.parametrize(
    "given",
    [
        [],
        None,
        [("traceparent", b"x")],
        [(SEAL_HEADER, b"")],
        [(SEAL_HEADER, None)],
        [(SEAL_HEADER, "é".encode())],
        [(SEAL_HEADER, b"0" * 64)],
    ],
)
def test_a_missing_empty_or_garbage_seal_fails(
    given: list[tuple[str, bytes | None]] | None,
) -> None:
    assert not is_sealed(KEY, TOPIC, b"initech", VALUE, given)


def test_two_seals_fail_even_if_one_is_right() -> None:
    doubled = [*headers(), (SEAL_HEADER, b"0" * 64)]
    assert not is_sealed(KEY, TOPIC, b"initech", VALUE, doubled)


def test_an_uppercase_seal_is_the_same_seal() -> None:
    upper = [(SEAL_HEADER, seal(KEY, TOPIC, b"initech", VALUE).upper().encode())]
    assert is_sealed(KEY, TOPIC, b"initech", VALUE, upper)


def test_the_canonical_bytes_keep_key_and_value_apart() -> None:
    # Without the key's length, key "a\nb" + value "c" and key "a" + value "b\nc" would collide.
    assert canonical(TOPIC, b"a\nb", b"c") != canonical(TOPIC, b"a", b"b\nc")
    assert canonical(TOPIC, None, VALUE) == canonical(TOPIC, b"", VALUE)
    assert canonical(TOPIC, b"k", b"v") == b"s1\nsy.settlements\n1:k\nv"


def test_passing_headers_on_drops_an_earlier_seal() -> None:
    assert without_seal(headers()) == [("traceparent", b"00-abc-def-01")]
    assert without_seal({"sy-seal": b"x", "a": None}) == [("a", b"")]
    assert without_seal(None) == []
