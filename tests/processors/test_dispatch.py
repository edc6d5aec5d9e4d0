import random

import pytest

from processors.circuit import CallPacer, CircuitBreaker
from processors.dispatch import (
    RETRY_TIERS_S,
    Call,
    EndpointGate,
    Finish,
    Park,
    backoff_s,
    next_step,
    retry_tier,
)
from schemas.errors import (
    ContextTooLong,
    InvalidRequest,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SwitchyardError,
)
from schemas.messages import Attempt, AttemptOutcome
from schemas.runtime_settings import BreakerPolicy, RetryPolicy

NOW = 1_800_000_000.0
POLICY = RetryPolicy(base_delay_s=1.0, max_delay_s=60.0, max_rounds=3, max_parked_s=300.0)
CHAIN = ["a", "b", "c"]
SEED = 11

_OUTCOME: dict[type[SwitchyardError], AttemptOutcome] = {
    ProviderTimeout: "timeout",
    ProviderUnavailable: "unavailable",
    RateLimited: "rate_limited",
}


def gate(threshold: int = 5, open_s: float = 5.0) -> EndpointGate:
    return EndpointGate(CircuitBreaker(BreakerPolicy(failure_threshold=threshold, open_s=open_s)))


def gates(*names: str) -> dict[str, EndpointGate]:
    return {name: gate() for name in names or CHAIN}


def failed(model: str, error: SwitchyardError, round_: int = 0) -> Attempt:
    outcome = _OUTCOME.get(type(error), "error")
    return Attempt(
        model=model, provider="p", outcome=outcome, latency_ms=1, error=error.info(), round=round_
    )


def ok(model: str, round_: int = 0) -> Attempt:
    return Attempt(model=model, provider="p", outcome="ok", latency_ms=1, round=round_)


def skip(model: str, outcome: AttemptOutcome, round_: int = 0) -> Attempt:
    return Attempt(model=model, provider="-", outcome=outcome, latency_ms=0, round=round_)


def down(model: str, round_: int = 0) -> Attempt:
    return failed(model, ProviderUnavailable("503"), round_)


def step(
    attempts: list[Attempt],
    the_gates: dict[str, EndpointGate] | None = None,
    *,
    chain: list[str] | None = None,
    round_: int = 0,
    parked_s: float = 0.0,
    now: float = NOW,
    deadline: float | None = None,
    policy: RetryPolicy = POLICY,
    seed: int = SEED,
) -> Call | Park | Finish:
    return next_step(
        chain if chain is not None else CHAIN,
        attempts,
        round_,
        parked_s,
        now,
        deadline,
        the_gates if the_gates is not None else gates(),
        policy,
        random.Random(seed),
    )


def open_breaker(g: EndpointGate, until: float) -> None:
    g.breaker.apply_remote("open", until)


def rate_limited_pacer(at: float, retry_after_s: float, oks: int = 0) -> CallPacer:
    """A pacer that let ``oks`` calls through in the 2 s before a 429 at ``at``."""
    pacer = CallPacer()
    for i in reversed(range(oks)):
        pacer.record_ok(at - i * 0.25)
    pacer.record_rate_limited(at, retry_after_s)
    return pacer


# --- calling and falling back within a round ----------------------------------


def test_first_call_goes_to_the_head_of_the_chain() -> None:
    assert step([]) == Call("a", 0.0, [])


def test_success_finishes_without_error() -> None:
    assert step([ok("a")]) == Finish(None, exhausted=False)
    assert step([down("a"), ok("b")]) == Finish(None)


def test_success_finishes_even_after_the_deadline() -> None:
    assert step([ok("a")], deadline=NOW - 1) == Finish(None)


def test_retryable_failures_fall_back_in_chain_order() -> None:
    attempts = [down("a")]
    assert step(attempts) == Call("b", 0.0, [])
    attempts.append(failed("b", ProviderTimeout("slow")))
    assert step(attempts) == Call("c", 0.0, [])


def test_rate_limited_call_moves_on_to_the_next_model() -> None:
    attempts = [failed("a", RateLimited("429", retry_after_s=3))]
    assert step(attempts) == Call("b", 0.0, [])


@pytest.mark.parametrize(
    "error", [ProviderRejected("401 bad key"), InvalidRequest("bad body")], ids=lambda e: e.code
)
def test_non_retryable_error_finishes_with_that_error(error: SwitchyardError) -> None:
    result = step([failed("a", error)])
    assert result == Finish(error.info(), exhausted=False)


def test_context_too_long_moves_to_the_next_model() -> None:
    attempts = [failed("a", ContextTooLong("8k"))]
    assert step(attempts) == Call("b", 0.0, [])


def test_context_too_long_model_is_left_out_of_later_rounds() -> None:
    attempts = [failed("a", ContextTooLong("8k")), down("b"), down("c")]
    parked = step(attempts)
    assert isinstance(parked, Park)
    assert parked.next_round == 1
    assert step(attempts, round_=1) == Call("b", 0.0, [])


def test_context_too_long_everywhere_finishes_exhausted() -> None:
    attempts = [failed(m, ContextTooLong("too long")) for m in CHAIN]
    result = step(attempts)
    assert isinstance(result, Finish)
    assert result.exhausted is True
    assert result.error is not None
    assert result.error.code == "context_length_exceeded"


def test_models_without_a_gate_are_left_out() -> None:
    assert step([], gates("b", "c")) == Call("b", 0.0, [])


def test_no_usable_model_finishes_unavailable() -> None:
    result = step([], gates("x"))
    assert isinstance(result, Finish)
    assert result.exhausted is True
    assert result.error is not None
    assert result.error.code == "provider_unavailable"


# --- open circuits and throttled endpoints ------------------------------------


def test_open_circuit_is_skipped_and_reported() -> None:
    g = gates()
    open_breaker(g["a"], NOW + 10)
    assert step([], g) == Call("b", 0.0, [skip("a", "circuit_open")])


def test_skips_carry_the_round() -> None:
    g = gates()
    open_breaker(g["a"], NOW + 10)
    open_breaker(g["b"], NOW + 10)
    result = step([], g, round_=4)
    assert result == Call("c", 0.0, [skip("a", "circuit_open", 4), skip("b", "circuit_open", 4)])


def test_half_open_gives_the_probe_to_one_job_only() -> None:
    g = gates()
    open_breaker(g["a"], NOW - 1)  # the open window has passed
    assert step([], g) == Call("a", 0.0, [])
    assert g["a"].breaker.state == "half_open"
    assert step([], g) == Call("b", 0.0, [skip("a", "circuit_open")])


def test_skipped_model_is_tried_later_in_the_round_when_its_circuit_allows() -> None:
    g = gates()
    attempts = [skip("a", "circuit_open"), down("b")]
    assert step(attempts, g) == Call("a", 0.0, [])


def test_job_behind_a_probe_in_flight_is_not_parked_for_zero_seconds() -> None:
    g = gates("a")
    open_breaker(g["a"], NOW - 1)
    assert step([], g, chain=["a"]) == Call("a", 0.0, [])  # the probe goes out
    result = step([], g, chain=["a"])
    assert isinstance(result, Park)
    assert result.resume_at > NOW


def test_throttled_endpoint_is_skipped() -> None:
    g = gates()
    g["a"].pacer.cool_down(NOW + 3)
    assert step([], g) == Call("b", 0.0, [skip("a", "throttled")])


def test_throttled_endpoint_does_not_use_up_the_probe() -> None:
    g = gates()
    open_breaker(g["a"], NOW - 1)
    g["a"].pacer.cool_down(NOW + 3)
    assert step([], g) == Call("b", 0.0, [skip("a", "throttled")])
    assert g["a"].breaker.state == "open"  # allow() was not asked
    assert g["a"].breaker.allow(NOW) is True


def test_short_pacing_wait_is_spent_in_memory() -> None:
    g = gates()
    g["a"].pacer.cool_down(NOW + 0.75)
    assert step([], g) == Call("a", 0.75, [])


def test_calls_reserve_pacing_slots_then_spill_to_the_next_model() -> None:
    g = gates()
    g["a"].pacer = rate_limited_pacer(NOW - 2, retry_after_s=1, oks=4)  # 2 calls/s
    assert g["a"].pacer.rate == 2.0
    waits = [step([], g) for _ in range(4)]
    assert waits == [
        Call("a", 0.0, []),
        Call("a", 0.5, []),
        Call("a", 1.0, []),
        Call("b", 0.0, [skip("a", "throttled")]),  # 1.5 s is too long to hold in memory
    ]


# --- deadlines ------------------------------------------------------------------


@pytest.mark.parametrize("deadline", [NOW, NOW - 30])
def test_expired_deadline_finishes_without_a_call(deadline: float) -> None:
    g = gates()
    open_breaker(g["a"], NOW - 1)  # a call would claim the probe
    result = step([down("b")], g, deadline=deadline)
    assert isinstance(result, Finish)
    assert result.error is not None
    assert result.error.code == "deadline_expired"
    assert result.error.retryable is False
    assert result.exhausted is False
    assert g["a"].breaker.state == "open"


def test_deadline_in_the_future_still_calls() -> None:
    assert step([], deadline=NOW + 0.25) == Call("a", 0.0, [])


def test_deadline_before_any_endpoint_is_ready_finishes() -> None:
    g = gates("a")
    open_breaker(g["a"], NOW + 30)
    for deadline in (NOW + 10, NOW + 30):
        result = step([], g, chain=["a"], deadline=deadline)
        assert isinstance(result, Finish)
        assert result.error is not None
        assert result.error.code == "deadline_expired"
    assert step([], g, chain=["a"], deadline=NOW + 31) == Park(NOW + 30, 1, "circuit_open")


# --- parking between rounds ---------------------------------------------------


def test_failed_round_parks_with_backoff_and_jitter() -> None:
    attempts = [down("a"), down("b"), down("c")]
    result = step(attempts)
    expected = NOW + backoff_s(1, POLICY, random.Random(SEED))
    assert result == Park(expected, 1, "unavailable")
    assert NOW + 0.5 <= expected <= NOW + 1.0


def test_backoff_grows_with_failed_rounds() -> None:
    attempts = [down(m, 0) for m in CHAIN] + [down(m, 1) for m in CHAIN]
    result = step(attempts, round_=1)
    assert isinstance(result, Park)
    assert result.next_round == 2
    assert NOW + 1.0 <= result.resume_at <= NOW + 2.0
    assert result.resume_at == NOW + backoff_s(2, POLICY, random.Random(SEED))


def test_jitter_depends_on_the_rng() -> None:
    attempts = [down(m) for m in CHAIN]
    resumes = set()
    for seed in range(20):
        result = step(attempts, seed=seed)
        assert isinstance(result, Park)
        resumes.add(result.resume_at)
    assert len(resumes) > 10


def test_park_waits_for_the_open_circuit_when_it_is_later_than_backoff() -> None:
    g = gates("a")
    open_breaker(g["a"], NOW + 20)
    assert step([down("a")], g, chain=["a"]) == Park(NOW + 20, 1, "unavailable")


def test_park_reason_lists_what_the_round_met() -> None:
    g = gates("a", "b")
    open_breaker(g["b"], NOW + 0.25)
    result = step([down("a")], g, chain=["a", "b"])
    assert isinstance(result, Park)
    assert result.reason == "circuit_open, unavailable"


def test_open_circuits_only_park_until_the_first_reopens_without_backoff() -> None:
    g = gates()
    open_breaker(g["a"], NOW + 20)
    open_breaker(g["b"], NOW + 7)
    open_breaker(g["c"], NOW + 12)
    assert step([], g) == Park(NOW + 7, 1, "circuit_open")


def test_backoff_applies_only_when_this_round_had_real_failures() -> None:
    policy = POLICY.model_copy(update={"base_delay_s": 10.0})
    g = gates("a")
    open_breaker(g["a"], NOW + 0.25)
    # Round 0 failed for real; round 1 only met the open circuit.
    result = step([down("a", 0)], g, chain=["a"], round_=1, policy=policy)
    assert result == Park(NOW + 0.25, 2, "circuit_open")


def test_round_of_429s_parks_until_the_retry_after() -> None:
    g = gates("a")
    g["a"].pacer = rate_limited_pacer(NOW, retry_after_s=3)
    attempts = [failed("a", RateLimited("429", retry_after_s=3))]
    assert step(attempts, g, chain=["a"]) == Park(NOW + 3, 1, "rate_limited")


def test_rate_limited_jobs_come_back_spread_at_the_learned_rate() -> None:
    g = gates("a")
    g["a"].pacer = rate_limited_pacer(NOW, retry_after_s=2, oks=4)  # 2 calls/s
    results = [step([], g, chain=["a"]) for _ in range(3)]
    assert results == [
        Park(NOW + 2, 1, "throttled"),
        Park(NOW + 2.5, 1, "throttled"),
        Park(NOW + 3, 1, "throttled"),
    ]


# --- giving up ------------------------------------------------------------------


def test_max_rounds_of_failures_finish_exhausted_with_the_last_error() -> None:
    attempts = [down(m, r) for r in range(3) for m in CHAIN[:2]]
    attempts.append(failed("c", ProviderTimeout("slow"), 2))
    result = step(attempts, round_=2)
    assert result == Finish(ProviderTimeout("slow").info(), exhausted=True)


def test_one_round_short_of_max_rounds_still_parks() -> None:
    attempts = [down(m, r) for r in range(2) for m in CHAIN]
    result = step(attempts, round_=1)
    assert isinstance(result, Park)
    assert result.next_round == 2


def test_max_rounds_one_gives_up_after_the_first_round() -> None:
    policy = POLICY.model_copy(update={"max_rounds": 1})
    result = step([down(m) for m in CHAIN], policy=policy)
    assert isinstance(result, Finish)
    assert result.exhausted is True


def test_rounds_of_only_429s_do_not_count_towards_max_rounds() -> None:
    policy = POLICY.model_copy(update={"max_rounds": 2})
    g = gates("a")
    g["a"].pacer = rate_limited_pacer(NOW, retry_after_s=3)
    limited = [failed("a", RateLimited("429", retry_after_s=3), r) for r in range(1, 6)]
    attempts = [down("a", 0), *limited]
    # Six rounds, five of them 429-only: one failed round of the two allowed.
    assert step(attempts, g, chain=["a"], round_=5, policy=policy) == Park(
        NOW + 3, 6, "rate_limited"
    )
    # A second round with a real failure uses up the allowance.
    attempts.append(down("a", 5))
    result = step(attempts, g, chain=["a"], round_=5, policy=policy)
    assert isinstance(result, Finish)
    assert result.exhausted is True


def test_rounds_of_only_open_circuits_do_not_count_towards_max_rounds() -> None:
    policy = POLICY.model_copy(update={"max_rounds": 1})
    g = gates("a")
    open_breaker(g["a"], NOW + 5)
    attempts = [skip("a", "circuit_open", r) for r in range(10)]
    assert step(attempts, g, chain=["a"], round_=10, policy=policy) == Park(
        NOW + 5, 11, "circuit_open"
    )


def test_max_parked_bounds_the_wait_for_rate_limits() -> None:
    g = gates("a")
    g["a"].pacer = rate_limited_pacer(NOW, retry_after_s=20)
    attempts = [failed("a", RateLimited("429", retry_after_s=20))]
    # The cap on parking spreads (PARK_CAP_S) never shortens a Retry-After.
    assert step(attempts, g, chain=["a"], parked_s=280) == Park(NOW + 20, 1, "rate_limited")
    result = step(attempts, g, chain=["a"], parked_s=280.25)
    assert result == Finish(attempts[0].error, exhausted=True)


def test_max_parked_without_any_call_reports_unavailable() -> None:
    g = gates("a")
    open_breaker(g["a"], NOW + 60)
    result = step([], g, chain=["a"], parked_s=250)
    assert isinstance(result, Finish)
    assert result.exhausted is True
    assert result.error is not None
    assert result.error.code == "provider_unavailable"


# --- backoff_s and retry_tier ---------------------------------------------------


@pytest.mark.parametrize(
    ("failed_rounds", "ceiling"),
    [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (30, 60.0)],
)
def test_backoff_is_between_half_the_ceiling_and_the_ceiling(
    failed_rounds: int, ceiling: float
) -> None:
    rng = random.Random(3)
    delays = [backoff_s(failed_rounds, POLICY, rng) for _ in range(200)]
    assert min(delays) >= ceiling / 2
    assert max(delays) <= ceiling
    # equal jitter: the random half is actually used
    assert max(delays) - min(delays) > ceiling / 4


def test_backoff_uses_base_delay() -> None:
    policy = RetryPolicy(base_delay_s=3.0, max_delay_s=100.0)
    assert 3.0 <= backoff_s(2, policy, random.Random(0)) <= 6.0  # ceiling 3 * 2


def test_backoff_is_reproducible_for_a_seed() -> None:
    first = backoff_s(3, POLICY, random.Random(42))
    assert backoff_s(3, POLICY, random.Random(42)) == first


def test_retry_tiers_are_sorted_shortest_first() -> None:
    assert list(RETRY_TIERS_S) == sorted(RETRY_TIERS_S)
    assert RETRY_TIERS_S == (1, 5, 30, 120)


@pytest.mark.parametrize(
    ("delay", "tier"),
    [
        (0.0, 0),
        (0.5, 0),
        (1.0, 0),
        (4.99, 0),
        (5.0, 1),
        (29.9, 1),
        (30.0, 2),
        (119.0, 2),
        (120.0, 3),
        (3600.0, 3),
    ],
)
def test_retry_tier_is_the_longest_tier_not_longer_than_the_wait(delay: float, tier: int) -> None:
    assert retry_tier(delay) == tier
