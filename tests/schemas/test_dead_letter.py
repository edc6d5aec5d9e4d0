"""DeadLetter.of_payload: what a letter keeps of the original bytes."""

from datetime import UTC, datetime

from schemas.dead_letter import DeadLetter
from schemas.messages import ErrorInfo

FIELDS = {
    "error": ErrorInfo(code="invalid_request", message="bad", retryable=False),
    "stage": "validate",
    "source_topic": "t",
    "source_partition": 0,
    "source_offset": 7,
    "dead_lettered_at": datetime(2026, 11, 30, tzinfo=UTC),
}


def test_a_payload_over_the_limit_is_cut_and_marked() -> None:
    letter = DeadLetter.of_payload(b"0123456789", 4, **FIELDS)
    assert (letter.payload, letter.payload_bytes, letter.payload_truncated) == ("0123", 10, True)


def test_a_payload_within_the_limit_or_without_one_is_kept_whole() -> None:
    within = DeadLetter.of_payload(b"0123", 4, **FIELDS)
    whole = DeadLetter.of_payload(b"0123456789", None, **FIELDS)
    assert (within.payload, within.payload_truncated) == ("0123", False)
    assert (whole.payload, whole.payload_bytes, whole.payload_truncated) == (
        "0123456789",
        10,
        False,
    )


def test_no_payload_and_bad_utf8_still_make_a_letter() -> None:
    assert DeadLetter.of_payload(None, 10, **FIELDS).payload == ""
    assert DeadLetter.of_payload(b"\xffok", 10, **FIELDS).payload == "\ufffdok"
