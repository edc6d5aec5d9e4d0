"""Feedback as it is stamped on arrival: never dated after it arrived."""

from datetime import UTC, datetime, timedelta

from schemas.feedback import Feedback

ARRIVED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def feedback(at: datetime | None) -> Feedback:
    return Feedback(request_id="r-1", tenant="acme", kind="thumbs", value=0, at=at)


def test_feedback_dated_in_the_future_is_clamped_to_its_arrival() -> None:
    assert feedback(datetime(2099, 1, 1, tzinfo=UTC)).received(ARRIVED).at == ARRIVED


def test_feedback_dated_in_the_past_keeps_its_date_and_undated_takes_its_arrival() -> None:
    earlier = ARRIVED - timedelta(hours=2)
    assert feedback(earlier).received(ARRIVED).at == earlier
    assert feedback(None).received(ARRIVED).at == ARRIVED
