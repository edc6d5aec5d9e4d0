from datetime import UTC, datetime, timedelta

import pytest

from processors.idempotency import duplicate_action
from schemas.answer import AnsweredRequest
from schemas.decision import DispatchJob, SourcePosition
from schemas.messages import InferenceReply, ReplyStatus
from tests.helpers import dispatch_job

ANSWERED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WINDOW_S = 3600.0
FIRST = SourcePosition(partition=2, offset=41)
SECOND = SourcePosition(partition=2, offset=97)


def job(source: SourcePosition | None) -> DispatchJob:
    return dispatch_job(ANSWERED_AT, source=source)


def answered(
    status: ReplyStatus = "ok", sources: list[SourcePosition] | None = None
) -> AnsweredRequest:
    reply = InferenceReply(request_id="r-1", tenant="acme", status=status, finished_at=ANSWERED_AT)
    return AnsweredRequest(
        request_id="r-1",
        sources=[FIRST] if sources is None else sources,
        reply=reply,
        answered_at=ANSWERED_AT,
    )


def after(seconds: float) -> datetime:
    return ANSWERED_AT + timedelta(seconds=seconds)


def test_never_answered_is_processed() -> None:
    assert duplicate_action(None, job(FIRST), after(1), WINDOW_S) == "process"


def test_job_without_a_source_is_processed() -> None:
    assert duplicate_action(answered(), job(None), after(1), WINDOW_S) == "process"


@pytest.mark.parametrize("status", ["ok", "error", "rejected", "expired"])
@pytest.mark.parametrize("age_s", [1.0, WINDOW_S * 10])
def test_redelivery_of_the_same_submission_is_skipped(status: ReplyStatus, age_s: float) -> None:
    # Same partition and offset: a crash replay, whatever the reply was and however old.
    assert duplicate_action(answered(status), job(FIRST), after(age_s), WINDOW_S) == "skip"


def test_any_recorded_source_counts_as_the_same_submission() -> None:
    ledger = answered(sources=[FIRST, SECOND])
    assert duplicate_action(ledger, job(SECOND), after(1), WINDOW_S) == "skip"


def test_same_offset_on_another_partition_is_a_new_submission() -> None:
    other = SourcePosition(partition=3, offset=FIRST.offset)
    assert duplicate_action(answered(), job(other), after(1), WINDOW_S) == "resend"


def test_resent_request_within_the_window_gets_the_stored_ok_reply() -> None:
    assert duplicate_action(answered("ok"), job(SECOND), after(1), WINDOW_S) == "resend"
    assert duplicate_action(answered("ok"), job(SECOND), after(WINDOW_S), WINDOW_S) == "resend"


@pytest.mark.parametrize("status", ["error", "rejected", "expired"])
def test_resent_request_after_a_failed_reply_is_retried(status: ReplyStatus) -> None:
    assert duplicate_action(answered(status), job(SECOND), after(1), WINDOW_S) == "process"


def test_resent_request_after_the_window_is_processed_again() -> None:
    assert duplicate_action(answered("ok"), job(SECOND), after(WINDOW_S + 1), WINDOW_S) == "process"


def test_window_is_the_callers() -> None:
    ledger = answered("ok")
    assert duplicate_action(ledger, job(SECOND), after(30), window_s=60) == "resend"
    assert duplicate_action(ledger, job(SECOND), after(90), window_s=60) == "process"
