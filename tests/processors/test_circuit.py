import pytest

from processors.circuit import CallPacer, CircuitBreaker, Transition
from schemas.runtime_settings import BreakerPolicy

# Breakers work on epoch seconds; the pacer's "no 429 yet" sentinel is 0.0, so
# every clock here starts well after it. Multiples of 0.25 keep the sums exact.
T0 = 1_800_000_000.0
P0 = 1000.0


def breaker(threshold: int = 3, open_s: float = 5.0) -> CircuitBreaker:
    return CircuitBreaker(BreakerPolicy(failure_threshold=threshold, open_s=open_s))


def opened(threshold: int = 3, open_s: float = 5.0, at: float = T0) -> CircuitBreaker:
    b = breaker(threshold, open_s)
    for _ in range(threshold):
        b.record_failure(at, "provider_unavailable")
    assert b.state == "open"
    return b


# --- CircuitBreaker ---------------------------------------------------------


def test_closed_breaker_allows_every_call() -> None:
    b = breaker()
    assert [b.allow(T0 + i) for i in range(5)] == [True] * 5
    assert b.state == "closed"
    assert b.retry_at() == 0.0


def test_failures_below_threshold_keep_it_closed() -> None:
    b = breaker(threshold=3)
    assert b.record_failure(T0, "provider_timeout") is None
    assert b.record_failure(T0 + 1, "provider_timeout") is None
    assert b.state == "closed"
    assert b.failures == 2
    assert b.allow(T0 + 2) is True


def test_threshold_th_consecutive_failure_opens_for_open_s() -> None:
    b = breaker(threshold=3, open_s=5.0)
    b.record_failure(T0, "provider_timeout")
    b.record_failure(T0 + 1, "provider_timeout")
    transition = b.record_failure(T0 + 2, "provider_unavailable")
    assert transition == Transition("open", T0 + 7, "provider_unavailable")
    assert b.state == "open"
    assert b.open_until == T0 + 7
    assert b.retry_at() == T0 + 7
    assert b.failures == 0


def test_threshold_of_one_opens_on_first_failure() -> None:
    b = breaker(threshold=1, open_s=2.0)
    assert b.record_failure(T0, "provider_timeout") == Transition(
        "open", T0 + 2, "provider_timeout"
    )


def test_success_resets_the_consecutive_failure_count() -> None:
    b = breaker(threshold=3)
    b.record_failure(T0, "x")
    b.record_failure(T0, "x")
    assert b.record_success() is None  # closed stays closed: nothing to announce
    assert b.failures == 0
    b.record_failure(T0, "x")
    b.record_failure(T0, "x")
    assert b.state == "closed"
    assert b.record_failure(T0, "x") is not None
    assert b.state == "open"


def test_open_breaker_rejects_until_open_until() -> None:
    b = opened(open_s=5.0, at=T0)
    assert b.allow(T0) is False
    assert b.allow(T0 + 4.75) is False
    assert b.state == "open"


def test_exactly_one_probe_after_open_until() -> None:
    b = opened(open_s=5.0, at=T0)
    assert b.allow(T0 + 5) is True  # the probe
    assert b.state == "half_open"
    assert b.allow(T0 + 5) is False
    assert b.allow(T0 + 6) is False
    assert b.allow(T0 + 100) is False


def test_probe_success_closes() -> None:
    b = opened(at=T0)
    assert b.allow(T0 + 5)
    assert b.record_success() == Transition("closed", None, "probe succeeded")
    assert b.state == "closed"
    assert b.retry_at() == 0.0
    assert [b.allow(T0 + 5), b.allow(T0 + 5)] == [True, True]


def test_probe_failure_reopens_with_new_open_until() -> None:
    b = opened(open_s=5.0, at=T0)
    assert b.allow(T0 + 6)
    transition = b.record_failure(T0 + 6.5, "provider_timeout")
    assert transition == Transition("open", T0 + 11.5, "probe failed: provider_timeout")
    assert b.state == "open"
    assert b.allow(T0 + 11) is False
    # and once the new window passes, there is again exactly one probe
    assert b.allow(T0 + 11.5) is True
    assert b.allow(T0 + 11.5) is False


def test_late_failures_while_open_do_not_extend_it() -> None:
    b = opened(threshold=2, open_s=5.0, at=T0)
    for _ in range(5):
        assert b.record_failure(T0 + 1, "provider_timeout") is None
    assert b.open_until == T0 + 5


def test_remote_open_is_adopted() -> None:
    b = breaker()
    b.apply_remote("open", T0 + 10)
    assert b.state == "open"
    assert b.retry_at() == T0 + 10
    assert b.allow(T0 + 9.75) is False
    assert b.allow(T0 + 10) is True
    assert b.allow(T0 + 10) is False


def test_later_remote_open_wins_earlier_is_ignored() -> None:
    b = opened(open_s=5.0, at=T0)  # open until T0+5
    b.apply_remote("open", T0 + 3)
    assert b.open_until == T0 + 5
    b.apply_remote("open", T0 + 20)
    assert b.open_until == T0 + 20
    assert b.allow(T0 + 10) is False


def test_remote_open_without_open_until_or_half_open_is_ignored() -> None:
    b = breaker()
    b.apply_remote("open", None)
    b.apply_remote("half_open", T0 + 10)
    assert b.state == "closed"
    assert b.allow(T0) is True


def test_remote_close_closes_and_resets_failures() -> None:
    b = opened(threshold=3, at=T0)
    b.apply_remote("closed", None)
    assert b.state == "closed"
    assert b.allow(T0 + 1) is True
    b.record_failure(T0 + 1, "x")
    b.record_failure(T0 + 1, "x")
    assert b.state == "closed"


def test_remote_close_while_probing_releases_everyone() -> None:
    b = opened(at=T0)
    assert b.allow(T0 + 5)
    b.apply_remote("closed", None)
    assert [b.allow(T0 + 5), b.allow(T0 + 5)] == [True, True]


def test_later_remote_open_during_probe_reopens() -> None:
    b = opened(open_s=5.0, at=T0)
    assert b.allow(T0 + 5)  # our probe is in flight
    b.apply_remote("open", T0 + 12)  # another worker's probe failed
    assert b.state == "open"
    assert b.allow(T0 + 11) is False
    assert b.allow(T0 + 12) is True


def test_repeated_remote_open_is_idempotent_and_keeps_one_probe() -> None:
    # The health topic is at-least-once and compacted: the same transition can
    # arrive again after this worker already went half-open on it.
    b = breaker()
    b.apply_remote("open", T0 + 5)
    assert b.allow(T0 + 5) is True  # the probe
    b.apply_remote("open", T0 + 5)
    assert b.allow(T0 + 5.25) is False
    assert b.state == "half_open"


def test_stale_remote_open_after_close_does_not_reopen() -> None:
    b = opened(open_s=5.0, at=T0)  # open until T0+5
    assert b.allow(T0 + 5)
    b.record_success()
    b.apply_remote("open", T0 + 5)  # the same old opening, seen late
    assert b.state == "closed"
    assert [b.allow(T0 + 6), b.allow(T0 + 6)] == [True, True]


# --- CallPacer ---------------------------------------------------------------


def paced(oks: list[float], at: float, retry_after_s: float | None = None) -> CallPacer:
    """A pacer that saw successes at ``oks`` and then a 429 at ``at``."""
    pacer = CallPacer()
    for t in oks:
        pacer.record_ok(t)
    pacer.record_rate_limited(at, retry_after_s)
    return pacer


def test_fresh_pacer_never_waits() -> None:
    pacer = CallPacer()
    assert pacer.rate is None
    assert pacer.wait_s(P0) == 0.0
    assert [pacer.reserve(P0) for _ in range(5)] == [0.0] * 5
    assert pacer.park_until(P0, 5.0) == P0


def test_429_cools_down_for_retry_after() -> None:
    pacer = paced([], P0, retry_after_s=3.0)
    assert pacer.cool_until == P0 + 3
    assert pacer.wait_s(P0) == 3.0
    assert pacer.wait_s(P0 + 2) == 1.0
    assert pacer.wait_s(P0 + 3) == 0.0
    assert pacer.reserve(P0 + 0.5) == 2.5


def test_429_without_retry_after_cools_for_one_second() -> None:
    assert paced([], P0, retry_after_s=None).cool_until == P0 + 1


def test_cool_until_never_moves_back() -> None:
    pacer = paced([], P0, retry_after_s=5.0)
    pacer.record_rate_limited(P0 + 1.5, 1.0)
    assert pacer.cool_until == P0 + 5
    pacer.cool_down(P0 + 2)
    assert pacer.cool_until == P0 + 5
    pacer.cool_down(P0 + 8)
    assert pacer.cool_until == P0 + 8


def test_remote_cool_down_does_not_invent_a_rate() -> None:
    pacer = CallPacer()
    pacer.cool_down(P0 + 4)
    assert pacer.rate is None
    assert pacer.wait_s(P0) == 4.0


def test_rate_is_successes_of_the_last_two_seconds() -> None:
    old = [P0 - 5, P0 - 4.5, P0 - 4, P0 - 3]  # outside the window: not counted
    recent = [P0 - 1.75, P0 - 1.5, P0 - 1, P0 - 0.5, P0 - 0.25, P0]
    assert paced(old + recent, P0).rate == 3.0  # 6 calls / 2 s


def test_window_edge_is_inclusive() -> None:
    assert paced([P0 - 2, P0 - 1], P0).rate == 1.0


def test_no_recent_success_gives_the_minimum_rate() -> None:
    assert paced([], P0).rate == 0.5
    assert paced([P0 - 10], P0).rate == 0.5
    assert paced([P0], P0).rate == 0.5  # 1 / 2 s, at the floor


def test_rate_is_lowered_at_most_once_per_second() -> None:
    pacer = paced([P0 - 1.75, P0 - 1.5, P0 - 1, P0 - 0.5, P0 - 0.25, P0], P0)
    assert pacer.rate == 3.0
    # Calls in flight when the limit hit come back 429 within the second.
    pacer.record_rate_limited(P0 + 0.25, None)
    pacer.record_rate_limited(P0 + 0.5, None)
    assert pacer.rate == 3.0
    # A second after the last one: what got through in the last 2 s (3 calls),
    # which is below 0.7 * 3.
    pacer.record_rate_limited(P0 + 1.5, None)
    assert pacer.rate == 1.5


def test_rate_decrease_is_at_least_multiplicative() -> None:
    pacer = paced([P0 - 1.75, P0 - 1.5, P0 - 1, P0 - 0.5, P0 - 0.25, P0], P0)
    assert pacer.rate == 3.0
    for i in range(1, 4):  # successes inside the 429's second: no raise
        pacer.record_ok(P0 + i * 0.25)
    assert pacer.rate == 3.0
    pacer.record_rate_limited(P0 + 1, None)  # 7 calls in 2 s = 3.5/s, but 0.7 * 3 caps it
    assert pacer.rate == pytest.approx(2.1)


def test_reserve_spaces_calls_one_over_rate_apart() -> None:
    pacer = paced([P0 - 1.5, P0 - 1, P0 - 0.5, P0], P0, retry_after_s=2.0)
    assert pacer.rate == 2.0
    start = P0 + 2
    assert pacer.wait_s(start) == 0.0
    assert [pacer.reserve(start) for _ in range(4)] == [0.0, 0.5, 1.0, 1.5]
    assert pacer.wait_s(start) == 2.0  # wait_s looks, it does not take a slot
    assert pacer.wait_s(start) == 2.0
    assert pacer.reserve(start + 3) == 0.0  # slots that passed unused are not owed


def test_quiet_seconds_raise_rate_by_a_tenth_per_second() -> None:
    pacer = paced([P0 - 1.5, P0 - 1, P0 - 0.5, P0], P0)
    assert pacer.rate == 2.0
    pacer.record_ok(P0 + 1.5)
    pacer.record_ok(P0 + 2)  # two seconds after the 429: not yet quiet long enough
    assert pacer.rate == 2.0
    pacer.record_ok(P0 + 2.5)
    assert pacer.rate == pytest.approx(2.2)
    pacer.record_ok(P0 + 3)  # less than a second since the last raise
    assert pacer.rate == pytest.approx(2.2)
    pacer.record_ok(P0 + 3.5)
    assert pacer.rate == pytest.approx(2.42)


def test_limit_is_forgotten_after_ten_seconds_without_429() -> None:
    pacer = paced([P0 - 1.5, P0 - 1, P0 - 0.5, P0], P0)
    pacer.record_ok(P0 + 10)
    assert pacer.rate is not None
    pacer.record_ok(P0 + 10.25)
    assert pacer.rate is None
    assert [pacer.reserve(P0 + 11) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_new_429_keeps_the_limit_alive() -> None:
    pacer = paced([P0 - 1.5, P0 - 1, P0 - 0.5, P0], P0)
    pacer.record_rate_limited(P0 + 8, None)
    pacer.record_ok(P0 + 12)
    assert pacer.rate is not None


def test_parked_jobs_are_spread_at_the_rate_and_capped() -> None:
    pacer = paced([P0 - 1.5, P0 - 1, P0 - 0.5, P0], P0, retry_after_s=3.0)
    assert pacer.rate == 2.0
    returns = [pacer.park_until(P0, cap_s=5.0) for _ in range(7)]
    assert returns == [P0 + 3, P0 + 3.5, P0 + 4, P0 + 4.5, P0 + 5, P0 + 5, P0 + 5]


def test_parked_jobs_without_a_rate_all_return_after_the_cool_down() -> None:
    pacer = CallPacer()
    pacer.cool_down(P0 + 3)
    assert [pacer.park_until(P0, cap_s=5.0) for _ in range(3)] == [P0 + 3] * 3


def test_park_cap_applies_to_a_long_retry_after() -> None:
    pacer = paced([], P0, retry_after_s=60.0)
    assert pacer.park_until(P0, cap_s=5.0) == P0 + 5


def test_a_configured_limit_paces_calls_at_this_workers_share() -> None:
    pacer = CallPacer()
    assert pacer.reserve(100.0) == 0.0 and pacer.reserve(100.0) == 0.0  # unpaced
    pacer.set_limit(4.0)  # e.g. 600/min x a quarter of the dispatch partitions / 60
    waits = [pacer.reserve(200.0) for _ in range(5)]
    assert waits == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_the_lower_of_the_learned_rate_and_the_limit_paces() -> None:
    pacer = CallPacer()
    pacer.set_limit(10.0)
    pacer.rate = 2.0  # learned from 429s: below the configured share
    assert pacer.pace() == 2.0
    pacer.rate = 50.0
    assert pacer.pace() == 10.0
    pacer.set_limit(None)
    assert pacer.pace() == 50.0
