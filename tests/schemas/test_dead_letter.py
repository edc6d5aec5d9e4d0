"""DeadLetter.of_payload: what a letter keeps of the original bytes, by the tenant's policy."""

import hashlib
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.config import TenantSpec
from schemas.dead_letter import DeadLetter, payload_policy
from schemas.errors import InternalError
from schemas.messages import ErrorInfo
from schemas.redaction import RedactionSettings

FIELDS = {
    "error": ErrorInfo(code="invalid_request", message="bad", retryable=False),
    "stage": "validate",
    "source_topic": "t",
    "source_partition": 0,
    "source_offset": 7,
    "dead_lettered_at": datetime(2026, 11, 30, tzinfo=UTC),
}


def test_a_payload_over_the_limit_is_cut_and_marked() -> None:
    letter = DeadLetter.of_payload(b"0123456789", 4, "full", **FIELDS)
    assert (letter.payload, letter.payload_bytes, letter.payload_truncated) == ("0123", 10, True)


def test_a_payload_within_the_limit_or_without_one_is_kept_whole() -> None:
    within = DeadLetter.of_payload(b"0123", 4, "full", **FIELDS)
    whole = DeadLetter.of_payload(b"0123456789", None, "full", **FIELDS)
    assert (within.payload, within.payload_truncated) == ("0123", False)
    assert (whole.payload, whole.payload_bytes, whole.payload_truncated) == (
        "0123456789",
        10,
        False,
    )


def test_no_payload_and_bad_utf8_still_make_a_letter() -> None:
    assert DeadLetter.of_payload(None, 10, "full", **FIELDS).payload == ""
    assert DeadLetter.of_payload(b"\xffok", 10, "full", **FIELDS).payload == "\ufffdok"


PROMPT = (
    b'{"request_id":"r1","tenant":"globex","messages":[{"role":"user","content":"secret plan"}]}'
)


def test_by_default_a_letter_keeps_only_the_size_and_hash() -> None:
    letter = DeadLetter.of_payload(PROMPT, 1000, **FIELDS)
    assert (letter.payload, letter.payload_bytes, letter.payload_truncated) == (
        "",
        len(PROMPT),
        False,
    )
    assert letter.payload_kept == "hash"
    assert letter.payload_sha256 == hashlib.sha256(PROMPT).hexdigest()
    assert b"secret" not in letter.model_dump_json().encode()
    assert not letter.replayable


def test_the_hash_is_of_the_whole_payload_even_when_it_is_cut() -> None:
    cut = DeadLetter.of_payload(PROMPT, 10, "full", **FIELDS)
    assert cut.payload_truncated and not cut.replayable
    assert cut.payload_sha256 == hashlib.sha256(PROMPT).hexdigest()
    assert DeadLetter.of_payload(PROMPT, None, "full", **FIELDS).replayable


def test_the_policy_is_the_tenants_and_hash_for_unknown_or_missing_tenants() -> None:
    tenants = {"acme": TenantSpec(dead_letter_payload="full"), "globex": TenantSpec()}
    assert payload_policy(tenants, "acme") == "full"
    assert payload_policy(tenants, "globex") == "hash"
    assert payload_policy(tenants, "nobody") == "hash"
    assert payload_policy(tenants, None) == "hash"


def test_a_letter_from_before_the_policy_reads_as_full() -> None:
    old = DeadLetter.of_payload(PROMPT, None, "full", **FIELDS).model_dump(mode="json")
    del old["payload_kept"], old["payload_sha256"]
    assert DeadLetter.model_validate(old).replayable


def test_a_redacted_letter_needs_its_redactor_and_is_not_replayable() -> None:
    raw = b'{"messages": "mail jo@example.com"}'
    letter = DeadLetter.of_payload(
        raw, None, "redacted", lambda text: text.replace("jo@example.com", "[EMAIL]"), **FIELDS
    )
    assert letter.payload == '{"messages": "mail [EMAIL]"}' and not letter.replayable
    assert letter.payload_bytes == len(raw)
    with pytest.raises(InternalError):
        DeadLetter.of_payload(raw, None, "redacted", **FIELDS)


def test_a_redaction_pattern_must_be_a_named_regex() -> None:
    assert RedactionSettings(patterns={"employee_id": r"\bEMP-\d{6}\b"}).patterns
    for patterns in ({"employee id": "x"}, {"ticket": "(unclosed"}):
        with pytest.raises(ValidationError):
            RedactionSettings(patterns=patterns)
